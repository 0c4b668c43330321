variable "name_prefix" {
  description = "Prefix of every resource name (buckets, functions, keys, alarms). Must match what the functions are configured with."
  type        = string
  default     = "copper-gallery"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 4-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region that hosts the gallery."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "dr_region" {
  description = "Second AWS region that receives replicas of backups and processed images. Must differ from region."
  type        = string
  default     = "eu-central-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.dr_region))
    error_message = "dr_region must be an AWS region name such as eu-central-1."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "lambda_zip_dir" {
  description = "Directory holding the cargo-lambda build output: <dir>/<function>/bootstrap.zip for api, image-processor, backup and retention."
  type        = string
  default     = "../target/lambda"

  validation {
    condition     = length(trimspace(var.lambda_zip_dir)) > 0
    error_message = "lambda_zip_dir must not be empty."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the gallery VPC. Two private /20 subnets are carved out of it."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    error_message = "vpc_cidr must be a valid IPv4 CIDR block of /18 or larger."
  }
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group (functions, database, flow logs, CloudTrail). At least one year."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention value of at least 365 days."
  }
}

variable "db_instance_class" {
  description = "RDS instance class of the PostgreSQL database."
  type        = string
  default     = "db.t4g.small"

  validation {
    condition     = can(regex("^db\\.", var.db_instance_class))
    error_message = "db_instance_class must be an RDS instance class such as db.t4g.small."
  }
}

variable "db_engine_version" {
  description = "PostgreSQL major version. Major only: RDS picks its default minor and upgrades it in the maintenance window (a pinned minor is refused once RDS retires it, and would make the next plan try to downgrade)."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^1[6-9]$", var.db_engine_version))
    error_message = "db_engine_version must be a PostgreSQL major version, 16 or newer (no minor: automatic minor upgrades are on)."
  }
}

variable "db_allocated_storage_gb" {
  description = "Allocated storage of the database in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage_gb >= 20 && var.db_allocated_storage_gb <= 1000
    error_message = "db_allocated_storage_gb must be between 20 and 1000."
  }
}

variable "db_name" {
  description = "Name of the gallery database."
  type        = string
  default     = "gallery"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must be a lowercase PostgreSQL identifier."
  }
}

variable "db_username" {
  description = "Master user of the database. Its password is generated and rotated by RDS in Secrets Manager."
  type        = string
  default     = "gallery_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_username)) && !contains(["admin", "postgres", "rdsadmin"], var.db_username)
    error_message = "db_username must be a lowercase identifier and not a reserved name."
  }
}

variable "db_backup_username" {
  description = "Read-only role the daily backup takes its snapshot with (created by the migrations)."
  type        = string
  default     = "gallery_backup"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_backup_username))
    error_message = "db_backup_username must be a lowercase PostgreSQL identifier."
  }
}

variable "db_max_connections" {
  description = "PostgreSQL max_connections. Keep it at or below RDS's default for the instance class (about 190 for db.t4g.small)."
  type        = number
  default     = 150

  validation {
    condition     = var.db_max_connections >= 25 && var.db_max_connections <= 5000
    error_message = "db_max_connections must be between 25 and 5000."
  }
}

variable "db_connection_headroom" {
  description = "Connections kept free of the functions' budget: PostgreSQL's reserved superuser slots, RDS's own, and an operator's session."
  type        = number
  default     = 20

  validation {
    condition     = var.db_connection_headroom >= 5
    error_message = "db_connection_headroom must be at least 5."
  }
}

variable "operator_permission_set" {
  description = "Name of the IAM Identity Center permission set whose sessions may assume the operator and recovery roles. Identity Center enforces the second factor at sign-in (its sessions never carry aws:MultiFactorAuthPresent, so the trust policy names the permission set's roles instead)."
  type        = string
  default     = "GalleryOperator"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,32}$", var.operator_permission_set))
    error_message = "operator_permission_set must be a permission set name."
  }
}

variable "recover_backups_from" {
  description = "Only in a recovery deployment after a lost region: the lost deployment's replica backups bucket (<old prefix>-backups-dr) and its backups key replica ARN. The backup function then restores from, and keeps backing up into, that bucket under that key (see docs/disaster-recovery.md)."
  type = object({
    bucket  = string
    key_arn = string
  })
  default = null
}

variable "enable_guardduty" {
  description = "GuardDuty with S3 data-event, RDS login and Lambda network protection; findings to the alarm topic."
  type        = bool
  default     = true
}

variable "enable_security_hub" {
  description = "Security Hub with AWS Foundational Security Best Practices; high and critical findings to the alarm topic."
  type        = bool
  default     = true
}

variable "enable_cloudtrail_insights" {
  description = "CloudTrail Insights (API call and error rate anomalies) on the trail."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of RDS automated backups (point-in-time recovery window). At least 7."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "db_multi_az" {
  description = "Run the database with a synchronous standby in the second availability zone."
  type        = bool
  default     = true
}

variable "upload_max_bytes" {
  description = "Largest original upload the API presigns (GALLERY_UPLOAD_MAX_BYTES)."
  type        = number
  default     = 52428800

  validation {
    condition     = var.upload_max_bytes >= 1048576 && var.upload_max_bytes <= 524288000
    error_message = "upload_max_bytes must be between 1 MiB and 500 MiB."
  }
}

variable "max_pixels" {
  description = "Largest image, in pixels, the image processor decodes (GALLERY_MAX_PIXELS)."
  type        = number
  default     = 100000000

  validation {
    condition     = var.max_pixels >= 1000000 && var.max_pixels <= 500000000
    error_message = "max_pixels must be between 1e6 and 5e8."
  }
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrency of the API function; bounds the database connections it can open."
  type        = number
  default     = 20

  validation {
    condition     = var.api_reserved_concurrency >= 1 && var.api_reserved_concurrency <= 200
    error_message = "api_reserved_concurrency must be between 1 and 200."
  }
}

variable "image_processor_reserved_concurrency" {
  description = "Reserved concurrency of the image processor; bounds memory-heavy decoding and database connections."
  type        = number
  default     = 4

  validation {
    condition     = var.image_processor_reserved_concurrency >= 1 && var.image_processor_reserved_concurrency <= 50
    error_message = "image_processor_reserved_concurrency must be between 1 and 50."
  }
}

variable "originals_expiration_days" {
  description = "Days after which an unprocessed temporary original is deleted by the bucket lifecycle."
  type        = number
  default     = 7

  validation {
    condition     = var.originals_expiration_days >= 1 && var.originals_expiration_days <= 30
    error_message = "originals_expiration_days must be between 1 and 30."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced or deleted object version is kept (undelete window) before the lifecycle removes it."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days >= 7 && var.noncurrent_version_retention_days <= 365
    error_message = "noncurrent_version_retention_days must be between 7 and 365."
  }
}

variable "backup_schedule" {
  description = "EventBridge Scheduler expression of the daily database backup."
  type        = string
  default     = "cron(0 2 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.backup_schedule))
    error_message = "backup_schedule must be a cron() or rate() expression."
  }
}

variable "restore_drill_schedule" {
  description = "EventBridge Scheduler expression of the daily restore drill (a few hours after the backup)."
  type        = string
  default     = "cron(0 5 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.restore_drill_schedule))
    error_message = "restore_drill_schedule must be a cron() or rate() expression."
  }
}

variable "retention_schedule" {
  description = "EventBridge Scheduler expression of the daily retention sweep."
  type        = string
  default     = "cron(30 3 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.retention_schedule))
    error_message = "retention_schedule must be a cron() or rate() expression."
  }
}

variable "schedule_timezone" {
  description = "IANA time zone of the schedules."
  type        = string
  default     = "UTC"

  validation {
    condition     = length(var.schedule_timezone) > 0
    error_message = "schedule_timezone must not be empty."
  }
}

variable "alarm_email" {
  description = "Optional e-mail address subscribed to the alarm topic. Empty: subscribe by other means."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be empty or an e-mail address."
  }
}

variable "api_5xx_threshold" {
  description = "ApiServerError count per 5 minutes that raises the API 5xx alarm."
  type        = number
  default     = 5

  validation {
    condition     = var.api_5xx_threshold >= 1
    error_message = "api_5xx_threshold must be at least 1."
  }
}

variable "image_failure_threshold" {
  description = "ImageFailed count per 15 minutes that raises the image failure spike alarm."
  type        = number
  default     = 5

  validation {
    condition     = var.image_failure_threshold >= 1
    error_message = "image_failure_threshold must be at least 1."
  }
}

variable "api_certificate_arn" {
  description = "Optional ACM certificate (us-east-1) for a custom API domain. Empty: the distribution's default certificate is used."
  type        = string
  default     = ""

  validation {
    condition     = var.api_certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", var.api_certificate_arn))
    error_message = "api_certificate_arn must be empty or an ACM certificate ARN in us-east-1."
  }
}

variable "api_domain_names" {
  description = "Custom domain names of the API distribution; requires api_certificate_arn."
  type        = list(string)
  default     = []
}

variable "enable_kms_replica" {
  description = "Create the backups key's replica in the DR region. Always on in AWS; the emulator apply turns it off because the emulator's ReplicateKey copies neither the requested policy nor tags (the provider then waits forever)."
  type        = bool
  default     = true
}

variable "enable_rds_backup_replication" {
  description = "Replicate the database's automated backups to the DR region (point-in-time restore there after a region loss). Always on in AWS; the emulator apply turns it off because the emulator has no cross-Region automated-backup replication."
  type        = bool
  default     = true
}

variable "enable_access_analyzer" {
  description = "Create the IAM Access Analyzer for the account. Keep true; the emulator test disables it because the emulator has no Access Analyzer."
  type        = bool
  default     = true
}

variable "enable_public_read_cache" {
  description = "Cache the public gallery reads at the edge by the API's Cache-Control. Keep true; the emulator test disables it because the emulator has no CloudFront cache policies (the behaviours then use CachingDisabled)."
  type        = bool
  default     = true
}

variable "cors_origins" {
  description = "Browser origins allowed to call the API (GALLERY_CORS_ORIGINS), e.g. [\"https://gallery.example\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_origins : can(regex("^https://[a-z0-9.-]+(:[0-9]+)?$", o))])
    error_message = "cors_origins must be https:// origins without a path."
  }
}

variable "deleted_artwork_grace_days" {
  description = "How long a deleted artwork stays restorable before retention purges it (RETENTION_DELETED_ARTWORK_DAYS, read by the API and retention)."
  type        = number
  default     = 30

  validation {
    condition     = var.deleted_artwork_grace_days >= 1 && var.deleted_artwork_grace_days <= 365
    error_message = "deleted_artwork_grace_days must be 1 to 365."
  }
}

variable "public_base_url" {
  description = "The gallery's public origin (https://gallery.example): rendition URLs in API answers are absolute under it (GALLERY_MEDIA_BASE_URL). Empty: the first of api_domain_names, else root-relative URLs."
  type        = string
  default     = ""

  validation {
    condition     = var.public_base_url == "" || can(regex("^https://[a-z0-9.-]+(:[0-9]+)?$", var.public_base_url))
    error_message = "public_base_url must be an https:// origin without a path."
  }
}

variable "waf_rate_limit" {
  description = "Requests one client IP may make in 5 minutes, all paths (WAF rate-based rule)."
  type        = number
  default     = 3000

  validation {
    condition     = var.waf_rate_limit >= 100
    error_message = "waf_rate_limit must be at least 100 (WAF's minimum is 10; below 100 a gallery page's images alone would trip it)."
  }
}

variable "waf_write_rate_limit" {
  description = "POST/PUT/PATCH/DELETE requests one client IP may make in 5 minutes."
  type        = number
  default     = 300

  validation {
    condition     = var.waf_write_rate_limit >= 10
    error_message = "waf_write_rate_limit must be at least 10 (WAF's minimum)."
  }
}

variable "waf_upload_rate_limit" {
  description = "Upload slots (POST …/images) one client IP may open in 5 minutes."
  type        = number
  default     = 60

  validation {
    condition     = var.waf_upload_rate_limit >= 10
    error_message = "waf_upload_rate_limit must be at least 10 (WAF's minimum)."
  }
}

variable "enable_shield_advanced" {
  description = "Protect the distribution with Shield Advanced, where compliance requires it. Needs an active Shield Advanced subscription on the account (a yearly commitment, made outside Terraform)."
  type        = bool
  default     = false
}

# --- Retention policy (docs/retention.md; shared/src/retention/policy.rs) -----------------

variable "retention_failed_image_days" {
  description = "How long a failed upload (and its reason) stays before retention purges it (RETENTION_FAILED_IMAGE_DAYS)."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_failed_image_days >= 1 && var.retention_failed_image_days <= 365
    error_message = "retention_failed_image_days must be 1 to 365."
  }
}

variable "retention_abandoned_upload_days" {
  description = "How long an upload slot never used is kept (RETENTION_ABANDONED_UPLOAD_DAYS)."
  type        = number
  default     = 2

  validation {
    condition     = var.retention_abandoned_upload_days >= 1 && var.retention_abandoned_upload_days <= 30
    error_message = "retention_abandoned_upload_days must be 1 to 30."
  }
}

variable "retention_stuck_processing_hours" {
  description = "After how many hours an image still processing is recorded as failed (RETENTION_STUCK_PROCESSING_HOURS)."
  type        = number
  default     = 24

  validation {
    condition     = var.retention_stuck_processing_hours >= 1 && var.retention_stuck_processing_hours <= 720
    error_message = "retention_stuck_processing_hours must be 1 to 720."
  }
}

variable "retention_dead_token_days" {
  description = "How long expired or revoked tokens are kept for investigations (RETENTION_DEAD_TOKEN_DAYS)."
  type        = number
  default     = 90

  validation {
    condition     = var.retention_dead_token_days >= 1 && var.retention_dead_token_days <= 730
    error_message = "retention_dead_token_days must be 1 to 730."
  }
}

variable "retention_idempotency_key_hours" {
  description = "How long a POST's stored answer is replayed to retries (RETENTION_IDEMPOTENCY_KEY_HOURS)."
  type        = number
  default     = 24

  validation {
    condition     = var.retention_idempotency_key_hours >= 1 && var.retention_idempotency_key_hours <= 168
    error_message = "retention_idempotency_key_hours must be 1 to 168."
  }
}

variable "retention_audit_days" {
  description = "How long audit entries are kept; erasure entries are kept for good (RETENTION_AUDIT_DAYS)."
  type        = number
  default     = 731

  validation {
    condition     = var.retention_audit_days >= 365
    error_message = "retention_audit_days must be at least 365 (the security decision keeps logs a year at least)."
  }
}

variable "retention_backup_record_days" {
  description = "How long catalogue rows of expired backups and restore-drill results are kept (RETENTION_BACKUP_RECORD_DAYS)."
  type        = number
  default     = 400

  validation {
    condition     = var.retention_backup_record_days >= 30
    error_message = "retention_backup_record_days must be at least 30."
  }
}

variable "retention_failed_backup_days" {
  description = "How long a failed backup's partial object is kept for investigation (RETENTION_FAILED_BACKUP_DAYS)."
  type        = number
  default     = 7

  validation {
    condition     = var.retention_failed_backup_days >= 1 && var.retention_failed_backup_days <= 90
    error_message = "retention_failed_backup_days must be 1 to 90."
  }
}

variable "backup_keep_last" {
  description = "Backup rotation: the newest successful backups always kept (RETENTION_BACKUP_KEEP_LAST)."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_keep_last >= 1
    error_message = "backup_keep_last must be at least 1: the newest good backup is never deleted."
  }
}

variable "backup_keep_daily" {
  description = "Backup rotation: the newest backup of each of this many last days that have one (RETENTION_BACKUP_DAILY)."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_keep_daily >= 0 && var.backup_keep_daily <= 366
    error_message = "backup_keep_daily must be 0 to 366."
  }
}

variable "backup_keep_weekly" {
  description = "Backup rotation: the newest backup of each of this many last ISO weeks that have one (RETENTION_BACKUP_WEEKLY)."
  type        = number
  default     = 4

  validation {
    condition     = var.backup_keep_weekly >= 0 && var.backup_keep_weekly <= 104
    error_message = "backup_keep_weekly must be 0 to 104."
  }
}

variable "backup_keep_monthly" {
  description = "Backup rotation: the newest backup of each of this many last months that have one (RETENTION_BACKUP_MONTHLY)."
  type        = number
  default     = 12

  validation {
    condition     = var.backup_keep_monthly >= 0 && var.backup_keep_monthly <= 120
    error_message = "backup_keep_monthly must be 0 to 120."
  }
}

variable "backup_keep_yearly" {
  description = "Backup rotation: the newest backup of each of this many last years that have one (RETENTION_BACKUP_YEARLY). Longer keeps erased artists in backups longer."
  type        = number
  default     = 0

  validation {
    condition     = var.backup_keep_yearly >= 0 && var.backup_keep_yearly <= 10
    error_message = "backup_keep_yearly must be 0 to 10."
  }
}
