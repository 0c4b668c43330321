# The four gallery functions: arm64, provided.al2023, JSON logs into their own
# encrypted log group, attached to the private subnets. Artifacts come from
# `cargo lambda build --release --arm64 --output-format zip`.

locals {
  # What every function reads (shared::config::Common). Each function adds only
  # what it reads itself: tests/it/terraform.rs compares every function's map
  # with the variables its Config reads, so a renamed, missing or unused
  # variable fails the test suite instead of a cold start in AWS.
  common_environment = {
    GALLERY_ORIGINALS_BUCKET = aws_s3_bucket.gallery["originals"].id
    GALLERY_PROCESSED_BUCKET = aws_s3_bucket.gallery["processed"].id
    GALLERY_BACKUPS_BUCKET   = aws_s3_bucket.gallery["backups"].id
    GALLERY_KMS_KEY_ID       = aws_kms_key.data.arn
    DATABASE_HOST            = aws_db_instance.main.address
    DATABASE_PORT            = tostring(local.db_port)
    DATABASE_NAME            = var.db_name
    DATABASE_CA_BUNDLE       = "/var/task/rds-ca-bundle.pem"
    RUST_LOG                 = "info"
  }

  # Each function logs in as its own database role, granted exactly what its
  # code runs (shared/migrations/V8__api_v1_1.sql), with its own secret.
  db_function_roles = {
    api             = "gallery_api"
    image_processor = "gallery_processor"
    retention       = "gallery_retention"
    backup          = "gallery_backup_records"
  }

  # db_pool: connections one instance's pool may open. Lambda gives an instance
  # one request at a time, and every handler holds one connection at a time, so
  # one is enough; the API keeps a second so a slow recycle never queues a
  # request. db_direct: connections opened outside the pool (the backup
  # function's owner connection and the drill's scratch database).
  # reserved × (db_pool + db_direct), summed, must fit db_max_connections minus
  # db_connection_headroom (checked below and by tests/it/terraform.rs).
  function_settings = {
    api = {
      description = "Gallery HTTP API (behind CloudFront, IAM-authenticated function URL) and token operator tasks"
      memory      = 512
      timeout     = 30
      reserved    = var.api_reserved_concurrency
      db_pool     = 2
      db_direct   = 0
      extra_env = {
        GALLERY_UPLOAD_MAX_BYTES       = tostring(var.upload_max_bytes)
        GALLERY_OPERATOR_ROLE_NAME     = local.operator_role_name
        GALLERY_CORS_ORIGINS           = join(",", var.cors_origins)
        GALLERY_MEDIA_BASE_URL         = local.public_base_url
        GALLERY_BACKUP_KMS_KEY_ID      = aws_kms_key.backups.arn
        RETENTION_DELETED_ARTWORK_DAYS = tostring(var.deleted_artwork_grace_days)
      }
    }
    image_processor = {
      description = "Validates uploaded originals and writes renditions"
      memory      = 2048
      timeout     = 120
      reserved    = var.image_processor_reserved_concurrency
      db_pool     = 1
      db_direct   = 0
      extra_env = {
        GALLERY_MAX_PIXELS       = tostring(var.max_pixels)
        GALLERY_UPLOAD_MAX_BYTES = tostring(var.upload_max_bytes)
      }
    }
    backup = {
      description = "Daily encrypted database backup, restore drill and backup operator tasks"
      memory      = 1024
      timeout     = 900
      reserved    = 1
      db_pool     = 1
      db_direct   = 2
      # The snapshot is read by the read-only backup role; migrations,
      # restores and drills run as the schema owner (RDS-managed master
      # credentials, fetched only by those tasks); the catalog rows are
      # written by the function's own role.
      # In a recovery deployment (recover_backups_from), the lost
      # deployment's replica bucket and key replica, read through the grants
      # its recovery role gives this function (docs/disaster-recovery.md).
      extra_env = {
        GALLERY_BACKUPS_BUCKET    = local.backups_source.bucket
        GALLERY_BACKUP_KMS_KEY_ID = local.backups_source.key_arn
        GALLERY_BACKUP_LOCK_DAYS  = tostring(local.backup_lock_days)
        # The DR copy every drill proves, through the DR Region's endpoints
        # with the backups key's replica (same key id, DR Region).
        GALLERY_DR_REGION                 = var.dr_region
        GALLERY_BACKUPS_REPLICA_BUCKET    = aws_s3_bucket.dr["backups"].id
        GALLERY_DR_S3_ENDPOINT            = local.dr_s3_endpoint
        GALLERY_DR_KMS_ENDPOINT           = local.dr_kms_endpoint
        GALLERY_BACKUP_REPLICA_KMS_KEY_ID = local.backups_replica_key_arn
        DATABASE_BACKUP_USER              = var.db_backup_username
        DATABASE_BACKUP_SECRET_ARN        = aws_secretsmanager_secret.db_backup.arn
        DATABASE_OWNER_USER               = var.db_username
        DATABASE_OWNER_SECRET_ARN         = aws_db_instance.main.master_user_secret[0].secret_arn
        GALLERY_OPERATOR_ROLE_NAME        = local.operator_role_name
        # The migrate task gives every function's role its login from its secret.
        DATABASE_API_USER             = "gallery_api"
        DATABASE_API_SECRET_ARN       = aws_secretsmanager_secret.db_function["api"].arn
        DATABASE_PROCESSOR_USER       = "gallery_processor"
        DATABASE_PROCESSOR_SECRET_ARN = aws_secretsmanager_secret.db_function["image_processor"].arn
        DATABASE_RETENTION_USER       = "gallery_retention"
        DATABASE_RETENTION_SECRET_ARN = aws_secretsmanager_secret.db_function["retention"].arn
      }
    }
    retention = {
      description = "Daily retention sweep of objects and records, and its dry run for operators"
      memory      = 512
      timeout     = 900
      reserved    = 1
      db_pool     = 1
      db_direct   = 0
      # The API tells artists until when a deleted work can be restored: both
      # read one variable. The policy (docs/retention.md) is set here in full.
      extra_env = {
        GALLERY_OPERATOR_ROLE_NAME       = local.operator_role_name
        GALLERY_BACKUP_KMS_KEY_ID        = aws_kms_key.backups.arn
        GALLERY_DR_REGION                = var.dr_region
        GALLERY_PROCESSED_REPLICA_BUCKET = aws_s3_bucket.dr["processed"].id
        GALLERY_BACKUPS_REPLICA_BUCKET   = aws_s3_bucket.dr["backups"].id
        GALLERY_DR_S3_ENDPOINT           = local.dr_s3_endpoint
        RETENTION_DELETED_ARTWORK_DAYS   = tostring(var.deleted_artwork_grace_days)
        RETENTION_FAILED_IMAGE_DAYS      = tostring(var.retention_failed_image_days)
        RETENTION_ABANDONED_UPLOAD_DAYS  = tostring(var.retention_abandoned_upload_days)
        RETENTION_STUCK_PROCESSING_HOURS = tostring(var.retention_stuck_processing_hours)
        RETENTION_DEAD_TOKEN_DAYS        = tostring(var.retention_dead_token_days)
        RETENTION_IDEMPOTENCY_KEY_HOURS  = tostring(var.retention_idempotency_key_hours)
        RETENTION_AUDIT_DAYS             = tostring(var.retention_audit_days)
        RETENTION_BACKUP_RECORD_DAYS     = tostring(var.retention_backup_record_days)
        RETENTION_DATABASE_SNAPSHOT_DAYS = tostring(var.db_backup_retention_days)
        RETENTION_FAILED_BACKUP_DAYS     = tostring(var.retention_failed_backup_days)
        RETENTION_BACKUP_KEEP_LAST       = tostring(var.backup_keep_last)
        RETENTION_BACKUP_DAILY           = tostring(var.backup_keep_daily)
        GALLERY_BACKUP_LOCK_DAYS         = tostring(local.backup_lock_days)
        RETENTION_BACKUP_WEEKLY          = tostring(var.backup_keep_weekly)
        RETENTION_BACKUP_MONTHLY         = tostring(var.backup_keep_monthly)
        RETENTION_BACKUP_YEARLY          = tostring(var.backup_keep_yearly)
      }
    }
  }

  # Where the backup function finds backups: its own bucket and key, or,
  # while recovering from a lost region, the lost deployment's replicas.
  recovering     = var.recover_backups_from != null
  backups_source = local.recovering ? var.recover_backups_from : { bucket = local.bucket_names.backups, key_arn = aws_kms_key.backups.arn }

  db_connection_demand = sum([for f in local.function_settings : f.reserved * (f.db_pool + f.db_direct)])
}

# Every function's reserved concurrency times its connections must fit the
# database, or a traffic peak turns into "too many connections" errors.
resource "terraform_data" "connection_budget" {
  input = local.db_connection_demand

  lifecycle {
    precondition {
      condition     = local.db_connection_demand + var.db_connection_headroom <= var.db_max_connections
      error_message = "The functions may open more database connections than db_max_connections minus db_connection_headroom allows: lower reserved concurrency or pool sizes, or raise db_max_connections."
    }
  }
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.function_names

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.ops.arn
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.function_names

  name               = each.value
  description        = "Execution role of ${each.value}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name_prefix}-dlq"
  message_retention_seconds = 1209600
  kms_master_key_id         = aws_kms_key.ops.arn

  kms_data_key_reuse_period_seconds = 300
}

# Every queue refuses plain-HTTP access (the withdrawal queue adds its sender, edge.tf).
data "aws_iam_policy_document" "queue_tls_only" {
  for_each = { dlq = aws_sqs_queue.dlq.arn, rendition_events = aws_sqs_queue.rendition_events.arn }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.queue_tls_only["dlq"].json
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_50:X-Ray would need an unscoped xray:Put* permission and another endpoint; requests are traced through JSON logs with request ids and EMF metrics
  #checkov:skip=CKV_AWS_272:Artifacts are built by CI and pinned by source_code_hash; AWS Signer profiles are not used
  #checkov:skip=CKV_AWS_116:Only the API function has no dead-letter queue: it is invoked synchronously through its URL, the caller gets the error (the async functions have dead_letter_config)
  for_each = local.function_names

  function_name = each.value
  description   = local.function_settings[each.key].description
  role          = aws_iam_role.function[each.key].arn

  filename         = "${var.lambda_zip_dir}/${local.function_folders[each.key]}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_zip_dir}/${local.function_folders[each.key]}/bootstrap.zip")
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["arm64"]

  memory_size                    = local.function_settings[each.key].memory
  timeout                        = local.function_settings[each.key].timeout
  reserved_concurrent_executions = local.function_settings[each.key].reserved
  kms_key_arn                    = aws_kms_key.data.arn

  environment {
    variables = merge(
      local.common_environment,
      {
        DATABASE_POOL_SIZE           = tostring(local.function_settings[each.key].db_pool)
        DATABASE_USER                = local.db_function_roles[each.key]
        DATABASE_PASSWORD_SECRET_ARN = aws_secretsmanager_secret.db_function[each.key].arn
      },
      local.function_settings[each.key].extra_env,
    )
  }

  logging_config {
    # No application log-level filter: the embedded-metric-format lines the
    # functions print carry no level and must never be dropped.
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.functions.id]
  }

  dynamic "dead_letter_config" {
    for_each = contains(local.async_functions, each.key) ? [aws_sqs_queue.dlq.arn] : []

    content {
      target_arn = dead_letter_config.value
    }
  }

  depends_on = [
    aws_iam_role_policy.function,
    aws_cloudwatch_log_group.function,
  ]
}

# Asynchronous invocations: two retries, then the failure record goes to the
# dead-letter queue (alarmed on).
resource "aws_lambda_function_event_invoke_config" "async" {
  for_each = local.async_functions

  function_name                = aws_lambda_function.function[each.key].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq.arn
    }
  }
}
