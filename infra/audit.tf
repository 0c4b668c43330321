# Account audit: a multi-region CloudTrail with log file validation, KMS
# encryption, S3 data events on every gallery bucket, delivered to the trail
# bucket and to CloudWatch Logs (for the security metric filters); IAM Access
# Analyzer for external access findings.

resource "aws_cloudwatch_log_group" "trail" {
  name              = "/${var.name_prefix}/cloudtrail"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.ops.arn
}

data "aws_iam_policy_document" "trail_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "trail" {
  name               = "${var.name_prefix}-cloudtrail-logs"
  description        = "Delivers CloudTrail events to their log group"
  assume_role_policy = data.aws_iam_policy_document.trail_assume.json
}

data "aws_iam_policy_document" "trail" {
  statement {
    sid       = "WriteTrailLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.trail.arn}:*"]
  }
}

resource "aws_iam_role_policy" "trail" {
  name   = "write-trail-log-group"
  role   = aws_iam_role.trail.id
  policy = data.aws_iam_policy_document.trail.json
}

resource "aws_cloudtrail" "main" {
  #checkov:skip=CKV_AWS_252:Per-log-file delivery notifications are not consumed; security events reach the alarm topic through CloudWatch Logs metric filters
  name                          = local.trail_name
  s3_bucket_name                = aws_s3_bucket.gallery["trail"].id
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  kms_key_id                    = aws_kms_key.ops.arn
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.trail.arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.trail.arn

  # Unusual rates of API calls or errors (a leaked key being tried, a
  # runaway function) become Insights events; see docs/security.md.
  dynamic "insight_selector" {
    for_each = var.enable_cloudtrail_insights ? ["ApiCallRateInsight", "ApiErrorRateInsight"] : []

    content {
      insight_type = insight_selector.value
    }
  }

  event_selector {
    read_write_type           = "All"
    include_management_events = true

    data_resource {
      type = "AWS::S3::Object"
      values = concat(
        [for b in aws_s3_bucket.gallery : "${b.arn}/"],
        [for b in aws_s3_bucket.dr : "${b.arn}/"],
        ["${aws_s3_bucket.logs.arn}/"],
      )
    }
  }

  depends_on = [aws_s3_bucket_policy.gallery, aws_iam_role_policy.trail]
}

resource "aws_accessanalyzer_analyzer" "account" {
  count = var.enable_access_analyzer ? 1 : 0

  analyzer_name = "${var.name_prefix}-account"
  type          = "ACCOUNT"
}
