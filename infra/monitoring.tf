# Alarms -> one KMS-encrypted SNS topic. Application metrics are emitted by
# the functions as CloudWatch embedded-metric-format log lines in the
# CopperGallery namespace; security metrics come from CloudTrail through
# metric filters on the trail log group.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.ops.arn
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  dynamic "statement" {
    for_each = length(local.finding_rules) > 0 ? ["findings"] : []

    content {
      sid       = "FindingRulesPublish"
      actions   = ["sns:Publish"]
      resources = [aws_sns_topic.alarms.arn]

      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [for k, _ in local.finding_rules : "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${var.name_prefix}-${k}-findings"]
      }
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

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

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- Security metric filters on the CloudTrail log group ----------------------------

locals {
  security_filters = {
    UnauthorizedApiCalls = {
      pattern     = "{ ($.errorCode = \"*UnauthorizedOperation\") || ($.errorCode = \"AccessDenied*\") }"
      description = "API calls denied by IAM (possible probing or a broken permission)"
      threshold   = 5
      period      = 300
    }
    KmsKeyDisabledOrScheduledForDeletion = {
      pattern     = "{ ($.eventSource = \"kms.amazonaws.com\") && (($.eventName = \"DisableKey\") || ($.eventName = \"ScheduleKeyDeletion\")) }"
      description = "A KMS key was disabled or scheduled for deletion: data would become unreadable"
      threshold   = 1
      period      = 300
    }
    BucketPolicyChanges = {
      pattern     = "{ ($.eventSource = \"s3.amazonaws.com\") && (($.eventName = \"PutBucketAcl\") || ($.eventName = \"PutBucketPolicy\") || ($.eventName = \"PutBucketCors\") || ($.eventName = \"PutBucketLifecycle\") || ($.eventName = \"PutBucketReplication\") || ($.eventName = \"DeleteBucketPolicy\") || ($.eventName = \"DeleteBucketCors\") || ($.eventName = \"DeleteBucketLifecycle\") || ($.eventName = \"DeleteBucketReplication\") || ($.eventName = \"PutBucketPublicAccessBlock\") || ($.eventName = \"DeleteBucketPublicAccessBlock\")) }"
      description = "A bucket policy, ACL, lifecycle, replication or public access block changed"
      threshold   = 1
      period      = 300
    }
  }
}

resource "aws_cloudwatch_log_metric_filter" "security" {
  for_each = local.security_filters

  name           = "${var.name_prefix}-${each.key}"
  log_group_name = aws_cloudwatch_log_group.trail.name
  pattern        = each.value.pattern

  metric_transformation {
    name      = each.key
    namespace = "${local.metric_namespace}/Security"
    value     = "1"
  }
}

resource "aws_cloudwatch_metric_alarm" "security" {
  for_each = local.security_filters

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "${local.metric_namespace}/Security"
  metric_name         = aws_cloudwatch_log_metric_filter.security[each.key].metric_transformation[0].name
  statistic           = "Sum"
  period              = each.value.period
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
}

# --- Application alarms (EMF metrics) ---------------------------------------------------

locals {
  app_alarms = {
    backup-missing = {
      description = "No successful database backup in the last 26 hours"
      metric      = "BackupSucceeded"
      function    = "backup"
      period      = 93600
      comparison  = "LessThanThreshold"
      threshold   = 1
      missing     = "breaching"
    }
    backup-failed = {
      description = "A database backup failed"
      metric      = "BackupFailed"
      function    = "backup"
      period      = 3600
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = 1
      missing     = "notBreaching"
    }
    restore-drill-missing = {
      description = "No successful restore drill in the last 26 hours"
      metric      = "RestoreDrillSucceeded"
      function    = "backup"
      period      = 93600
      comparison  = "LessThanThreshold"
      threshold   = 1
      missing     = "breaching"
    }
    restore-drill-failed = {
      description = "A restore drill failed: the latest backup may not be restorable"
      metric      = "RestoreDrillFailed"
      function    = "backup"
      period      = 3600
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = 1
      missing     = "notBreaching"
    }
    # A backup or a restore taking more than half the function's timeout:
    # the database is approaching the size one invocation can handle
    # (docs/backup-restore.md, "RPO and RTO").
    backup-slow = {
      description = "A backup took more than half the backup function's timeout"
      metric      = "BackupSeconds"
      function    = "backup"
      period      = 3600
      comparison  = "GreaterThanThreshold"
      threshold   = local.function_settings.backup.timeout / 2
      missing     = "notBreaching"
      statistic   = "Maximum"
    }
    restore-slow = {
      description = "A restore drill took more than half the backup function's timeout"
      metric      = "RestoreSeconds"
      function    = "backup"
      period      = 3600
      comparison  = "GreaterThanThreshold"
      threshold   = local.function_settings.backup.timeout / 2
      missing     = "notBreaching"
      statistic   = "Maximum"
    }
    # The DR copy, proven by every drill through the DR Region (engine/restore.rs):
    # missing, older than 26 h (replication stopped or late), or damaged.
    dr-copy-missing = {
      description = "No DR copy of the backups proven in the last 26 hours: it is missing, stale (replication late or failing) or damaged"
      metric      = "DrCopyVerified"
      function    = "backup"
      period      = 93600
      comparison  = "LessThanThreshold"
      threshold   = 1
      missing     = "breaching"
    }
    dr-copy-failed = {
      description = "The drill could not prove the DR copy of the newest backup (the drill's record says why)"
      metric      = "DrCopyFailed"
      function    = "backup"
      period      = 3600
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = 1
      missing     = "notBreaching"
    }
    older-backup-drill-failed = {
      description = "The weekly drill of an older backup (restored with erasure replay) failed"
      metric      = "OlderBackupDrillFailed"
      function    = "backup"
      period      = 3600
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = 1
      missing     = "notBreaching"
    }
    retention-missing = {
      description = "No retention sweep has succeeded in the last 26 hours: deletions are not happening"
      metric      = "RetentionSucceeded"
      function    = "retention"
      period      = 93600
      comparison  = "LessThanThreshold"
      threshold   = 1
      missing     = "breaching"
    }
    retention-skipped-items = {
      description = "A retention sweep skipped items it could not delete (the run's answer and log list them)"
      metric      = "RetentionErrors"
      function    = "retention"
      period      = 3600
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = 1
      missing     = "notBreaching"
    }
    api-5xx = {
      description = "The API answers with server errors"
      metric      = "ApiServerError"
      function    = "api"
      period      = 300
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = var.api_5xx_threshold
      missing     = "notBreaching"
    }
    image-failures = {
      description = "Spike of images the processor rejected or failed on"
      metric      = "ImageFailed"
      function    = "image_processor"
      period      = 900
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = var.image_failure_threshold
      missing     = "notBreaching"
    }
    api-unauthorized = {
      description = "Spike of unauthorised API requests (possible token abuse)"
      metric      = "ApiUnauthorized"
      function    = "api"
      period      = 300
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = 20
      missing     = "notBreaching"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "app" {
  for_each = local.app_alarms

  alarm_name        = "${var.name_prefix}-${each.key}"
  alarm_description = each.value.description
  namespace         = local.metric_namespace
  metric_name       = each.value.metric
  # The functions emit one dimension, Function = short function name
  # (shared::telemetry::metric_line).
  dimensions          = { Function = local.function_folders[each.value.function] }
  statistic           = try(each.value.statistic, "Sum")
  period              = each.value.period
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  treat_missing_data  = each.value.missing
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# --- Platform alarms --------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.function_names

  alarm_name          = "${each.value}-errors"
  alarm_description   = "Invocation errors of ${each.value}"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name_prefix}-dlq-not-empty"
  alarm_description   = "Failed asynchronous invocations are waiting in the dead-letter queue"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
}
