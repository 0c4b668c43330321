# Buckets. Every bucket: versioning, default encryption with bucket keys,
# public access block, BucketOwnerEnforced, a policy that denies plain-HTTP
# requests and uploads that ask for a different encryption, lifecycle rules
# and server access logging (into the logs bucket).

locals {
  # Buckets encrypted with one of our KMS keys, by name key => KMS key ARN.
  kms_buckets = {
    originals = aws_kms_key.data.arn
    processed = aws_kms_key.data.arn
    backups   = aws_kms_key.backups.arn
    trail     = aws_kms_key.ops.arn
  }

  # Buckets copied to the DR region.
  replicated_buckets = toset(["processed", "backups"])

  # Current versions expire after this many days (null: kept until the
  # application deletes them).
  current_expiration_days = {
    originals = var.originals_expiration_days
    processed = null
    backups   = null
    trail     = var.log_retention_days
  }
}

# Deny-by-default statements shared by every bucket policy.
data "aws_iam_policy_document" "bucket_baseline" {
  for_each = merge(local.kms_buckets, { logs = "" })

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      "arn:${local.partition}:s3:::${local.bucket_names[each.key]}",
      "arn:${local.partition}:s3:::${local.bucket_names[each.key]}/*",
    ]

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

  statement {
    sid       = "DenyUploadsWithOtherEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["arn:${local.partition}:s3:::${local.bucket_names[each.key]}/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    # Uploads without the header get the bucket default (our key); uploads
    # that ask for anything else are refused. "Present and different", not
    # ...IfExists: IAM evaluates a negated or IfExists condition on a missing
    # key as true, which would refuse S3's own access-log deliveries (they
    # carry no encryption header).
    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = [each.key == "logs" ? "AES256" : "aws:kms"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "logs" ? [] : [each.value]

    content {
      sid       = "DenyUploadsWithAnotherKmsKey"
      effect    = "Deny"
      actions   = ["s3:PutObject"]
      resources = ["arn:${local.partition}:s3:::${local.bucket_names[each.key]}/*"]

      principals {
        type        = "AWS"
        identifiers = ["*"]
      }

      condition {
        test     = "Null"
        variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
        values   = ["false"]
      }

      condition {
        test     = "StringNotEquals"
        variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
        values   = [statement.value]
      }
    }
  }
}

# --- KMS-encrypted buckets -------------------------------------------------------

resource "aws_s3_bucket" "gallery" {
  #checkov:skip=CKV2_AWS_62:Only the originals bucket needs event notifications (to the image processor); the other buckets have no consumer of object events
  #checkov:skip=CKV_AWS_144:Processed and backups are replicated to the DR region (aws_s3_bucket_replication_configuration.dr); originals are temporary and trail logs are also kept in CloudWatch Logs
  for_each = local.kms_buckets

  bucket = local.bucket_names[each.key]
}

# Backups nobody can delete early: S3 Object Lock in COMPLIANCE mode (no
# principal, the account root included, can shorten or remove it) on the
# backups bucket, with a default retention of the rotation's shortest keep.
# The backup function locks each object and manifest explicitly as well
# (a multipart upload's lock is set after it completes), and the erasure
# ledger's records are locked for longer than any backup is kept
# (shared/src/archive/ledger.rs). Enabling it on an existing versioned bucket
# is allowed; it can never be turned off.
locals {
  backup_lock_days = max(1, var.backup_keep_daily)
}

resource "aws_s3_bucket_object_lock_configuration" "backups" {
  bucket = aws_s3_bucket.gallery["backups"].id

  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = local.backup_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.gallery]
}

resource "aws_s3_bucket_versioning" "gallery" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.gallery[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "gallery" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.gallery[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.kms_buckets[each.key]
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "gallery" {
  for_each = local.kms_buckets

  bucket                  = aws_s3_bucket.gallery[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "gallery" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.gallery[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "gallery_bucket" {
  for_each = local.kms_buckets

  source_policy_documents = concat(
    [data.aws_iam_policy_document.bucket_baseline[each.key].json],
    each.key == "processed" ? [data.aws_iam_policy_document.renditions_through_cloudfront["primary"].json] : [],
    each.key == "backups" ? [data.aws_iam_policy_document.new_backup_keys_only["primary"].json] : [],
  )

  # CloudTrail delivery (trail bucket only), scoped to our trail.
  dynamic "statement" {
    for_each = each.key == "trail" ? ["acl"] : []

    content {
      sid       = "CloudTrailAclCheck"
      actions   = ["s3:GetBucketAcl"]
      resources = ["arn:${local.partition}:s3:::${local.bucket_names.trail}"]

      principals {
        type        = "Service"
        identifiers = ["cloudtrail.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceArn"
        values   = [local.trail_arn]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "trail" ? ["write"] : []

    content {
      sid       = "CloudTrailWrite"
      actions   = ["s3:PutObject"]
      resources = ["arn:${local.partition}:s3:::${local.bucket_names.trail}/AWSLogs/${local.account_id}/*"]

      principals {
        type        = "Service"
        identifiers = ["cloudtrail.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceArn"
        values   = [local.trail_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "s3:x-amz-acl"
        values   = ["bucket-owner-full-control"]
      }
    }
  }
}

# Backups and manifests are written once. S3 refuses a PutObject or
# CompleteMultipartUpload under backups/ that does not carry If-None-Match,
# whoever sends it (conditional writes enforced by bucket policy; the
# multipart steps that cannot carry the header are exempt through
# s3:ObjectCreationOperation). Object Lock keeps every older version anyway;
# this keeps each key's current version the one written beside its manifest.
data "aws_iam_policy_document" "new_backup_keys_only" {
  for_each = {
    primary = local.bucket_names.backups
    dr      = "${local.bucket_names.backups}-dr"
  }

  statement {
    sid       = "DenyBackupOverwrites"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["arn:${local.partition}:s3:::${each.value}/backups/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }

    condition {
      test     = "Bool"
      variable = "s3:ObjectCreationOperation"
      values   = ["true"]
    }
  }
}

resource "aws_s3_bucket_policy" "gallery" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.gallery[each.key].id
  policy = data.aws_iam_policy_document.gallery_bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.gallery]
}

resource "aws_s3_bucket_lifecycle_configuration" "gallery" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.gallery[each.key].id

  rule {
    id     = "housekeeping"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  dynamic "rule" {
    for_each = local.current_expiration_days[each.key] == null ? [] : [local.current_expiration_days[each.key]]

    content {
      id     = each.key == "originals" ? "expire-temporary-originals" : "expire-old-logs"
      status = "Enabled"

      filter {}

      abort_incomplete_multipart_upload {
        days_after_initiation = 1
      }

      expiration {
        days = rule.value
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.gallery]
}

resource "aws_s3_bucket_logging" "gallery" {
  for_each = local.kms_buckets

  bucket        = aws_s3_bucket.gallery[each.key].id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${aws_s3_bucket.gallery[each.key].id}/"

  depends_on = [aws_s3_bucket_policy.logs]
}

# --- Access-log bucket -------------------------------------------------------------
# S3 server access logging cannot deliver into a bucket whose default
# encryption is SSE-KMS, so this one bucket uses SSE-S3 (AES-256). It holds
# only access logs; the policy refuses any other encryption.

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_145:S3 server access logging only delivers to buckets with SSE-S3 default encryption; SSE-KMS would silently drop the access logs
  #checkov:skip=CKV_AWS_18:This is the access-log target; logging it into itself would loop. Access to it is recorded by CloudTrail data events
  #checkov:skip=CKV_AWS_144:Access logs are operational evidence with a one-year lifecycle; not replicated
  #checkov:skip=CKV2_AWS_62:No consumer of object events for access logs
  bucket = local.bucket_names.logs
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "logs_bucket" {
  source_policy_documents = [data.aws_iam_policy_document.bucket_baseline["logs"].json]

  statement {
    sid     = "S3ServerAccessLogsDelivery"
    actions = ["s3:PutObject"]
    # The whole bucket: it receives nothing but access logs, and the
    # conditions below restrict delivery to our own buckets.
    resources = ["arn:${local.partition}:s3:::${local.bucket_names.logs}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for k in keys(local.kms_buckets) : "arn:${local.partition}:s3:::${local.bucket_names[k]}"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "housekeeping"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }

    expiration {
      days = var.log_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

# --- Originals -> image processor ------------------------------------------------------

resource "aws_lambda_permission" "originals_invoke_image_processor" {
  statement_id   = "AllowOriginalsBucketInvoke"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function["image_processor"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.gallery["originals"].arn
  source_account = local.account_id
}

resource "aws_s3_bucket_notification" "originals" {
  bucket = aws_s3_bucket.gallery["originals"].id

  lambda_function {
    id                  = "image-processor"
    lambda_function_arn = aws_lambda_function.function["image_processor"].arn
    events              = ["s3:ObjectCreated:*"]
  }

  depends_on = [aws_lambda_permission.originals_invoke_image_processor]
}

# Browsers upload originals straight to S3 with the API's presigned POST: the
# gallery's own origins may POST a form, nothing else (no GET, no PUT, no
# custom headers; the form's fields travel in the body, bound by its policy).
resource "aws_s3_bucket_cors_configuration" "originals" {
  count  = length(var.cors_origins) > 0 ? 1 : 0
  bucket = aws_s3_bucket.gallery["originals"].id

  cors_rule {
    allowed_methods = ["POST"]
    allowed_origins = var.cors_origins
    allowed_headers = []
    expose_headers  = ["ETag"]
    max_age_seconds = 3000
  }
}
