# Disaster-recovery copies of processed images and backups in var.dr_region,
# encrypted with a key of that region. Replicas keep deletes as delete
# markers, so a deletion in the primary region stays recoverable. S3 never
# replicates the deletion of a version: retention's purges delete every
# version in these buckets itself (infra/iam.tf, the s3_dr endpoint).

resource "aws_s3_bucket" "dr" {
  #checkov:skip=CKV_AWS_18:Replica buckets in the DR region; every access is recorded by the multi-region CloudTrail with S3 data events on these buckets
  #checkov:skip=CKV_AWS_144:These buckets are the cross-region replicas themselves
  #checkov:skip=CKV2_AWS_62:No consumer of object events for replicas
  provider = aws.dr
  for_each = local.replicated_buckets

  bucket = "${local.bucket_names[each.key]}-dr"
}

resource "aws_s3_bucket_versioning" "dr" {
  provider = aws.dr
  for_each = local.replicated_buckets

  bucket = aws_s3_bucket.dr[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

# A source with Object Lock replicates only into a destination with it; the
# replicas keep each object's retention.
resource "aws_s3_bucket_object_lock_configuration" "backups_dr" {
  provider = aws.dr
  bucket   = aws_s3_bucket.dr["backups"].id

  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = local.backup_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.dr]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "dr" {
  provider = aws.dr
  for_each = local.replicated_buckets

  bucket = aws_s3_bucket.dr[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.dr.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "dr" {
  provider = aws.dr
  for_each = local.replicated_buckets

  bucket                  = aws_s3_bucket.dr[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "dr" {
  provider = aws.dr
  for_each = local.replicated_buckets

  bucket = aws_s3_bucket.dr[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "dr_bucket" {
  for_each = local.replicated_buckets

  source_policy_documents = each.key == "processed" ? [data.aws_iam_policy_document.renditions_through_cloudfront["dr"].json] : [data.aws_iam_policy_document.new_backup_keys_only["dr"].json]

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      "arn:${local.partition}:s3:::${local.bucket_names[each.key]}-dr",
      "arn:${local.partition}:s3:::${local.bucket_names[each.key]}-dr/*",
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
    resources = ["arn:${local.partition}:s3:::${local.bucket_names[each.key]}-dr/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  statement {
    sid       = "DenyUploadsWithAnotherKmsKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["arn:${local.partition}:s3:::${local.bucket_names[each.key]}-dr/*"]

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
      values   = [aws_kms_key.dr.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "dr" {
  provider = aws.dr
  for_each = local.replicated_buckets

  bucket = aws_s3_bucket.dr[each.key].id
  policy = data.aws_iam_policy_document.dr_bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.dr]
}

resource "aws_s3_bucket_lifecycle_configuration" "dr" {
  provider = aws.dr
  for_each = local.replicated_buckets

  bucket = aws_s3_bucket.dr[each.key].id

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
  }

  depends_on = [aws_s3_bucket_versioning.dr]
}

# --- Replication ----------------------------------------------------------------------

data "aws_iam_policy_document" "replication_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "replication" {
  name               = "${var.name_prefix}-s3-replication"
  description        = "Replicates processed images and backups to the DR region"
  assume_role_policy = data.aws_iam_policy_document.replication_assume.json
}

data "aws_iam_policy_document" "replication" {
  statement {
    sid       = "ReadReplicationConfiguration"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [for k in local.replicated_buckets : aws_s3_bucket.gallery[k].arn]
  }

  statement {
    sid       = "ReadSourceVersions"
    actions   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", "s3:GetObjectRetention", "s3:GetObjectLegalHold"]
    resources = [for k in local.replicated_buckets : "${aws_s3_bucket.gallery[k].arn}/*"]
  }

  statement {
    sid       = "WriteReplicas"
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
    resources = [for k in local.replicated_buckets : "${aws_s3_bucket.dr[k].arn}/*"]
  }

  statement {
    sid       = "DecryptSources"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn, aws_kms_key.backups.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "EncryptReplicas"
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.dr.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.dr_region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "replication" {
  name   = "replicate-to-dr"
  role   = aws_iam_role.replication.id
  policy = data.aws_iam_policy_document.replication.json
}

resource "aws_s3_bucket_replication_configuration" "dr" {
  for_each = local.replicated_buckets

  bucket = aws_s3_bucket.gallery[each.key].id
  role   = aws_iam_role.replication.arn

  rule {
    id     = "to-dr-region"
    status = "Enabled"

    filter {}

    delete_marker_replication {
      status = "Enabled"
    }

    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }

    destination {
      bucket        = aws_s3_bucket.dr[each.key].arn
      storage_class = "STANDARD_IA"

      encryption_configuration {
        replica_kms_key_id = aws_kms_key.dr.arn
      }

      # Replication Time Control: 99.99% of objects within 15 minutes, with
      # per-rule metrics (latency, pending, failed) that the alarms below read.
      replication_time {
        status = "Enabled"
        time {
          minutes = 15
        }
      }

      metrics {
        status = "Enabled"
        event_threshold {
          minutes = 15
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.gallery, aws_s3_bucket_versioning.dr]
}

# Failed or late replication: the DR copy every drill proves would go stale.
locals {
  replication_alarms = {
    failed = {
      description = "failed to replicate to the DR region"
      metric      = "OperationsFailedReplication"
      statistic   = "Sum"
      periods     = 1
      threshold   = 1
      comparison  = "GreaterThanOrEqualToThreshold"
    }
    late = {
      description = "replicate to the DR region later than their 15-minute threshold"
      metric      = "ReplicationLatency"
      statistic   = "Maximum"
      periods     = 3
      threshold   = 900
      comparison  = "GreaterThanThreshold"
    }
  }
  replication_alarm_pairs = { for pair in setproduct(local.replicated_buckets, keys(local.replication_alarms)) : "${pair[0]}-${pair[1]}" => { bucket = pair[0], alarm = local.replication_alarms[pair[1]] } }
}

resource "aws_cloudwatch_metric_alarm" "replication" {
  for_each = local.replication_alarm_pairs

  alarm_name          = "${var.name_prefix}-${each.key}-replication"
  alarm_description   = "Objects of ${local.bucket_names[each.value.bucket]} ${each.value.alarm.description}"
  namespace           = "AWS/S3"
  metric_name         = each.value.alarm.metric
  statistic           = each.value.alarm.statistic
  period              = 300
  evaluation_periods  = each.value.alarm.periods
  threshold           = each.value.alarm.threshold
  comparison_operator = each.value.alarm.comparison
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]

  dimensions = {
    SourceBucket      = aws_s3_bucket.gallery[each.value.bucket].id
    DestinationBucket = aws_s3_bucket.dr[each.value.bucket].id
    RuleId            = "to-dr-region"
  }
}
