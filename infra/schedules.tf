# Daily backup, restore drill and retention sweep. The target input is shaped
# like an EventBridge event so the handlers parse one format; detail.task
# tells the backup function which job to run.

locals {
  schedules = {
    backup = {
      function   = "backup"
      expression = var.backup_schedule
      task       = "backup"
    }
    restore-drill = {
      function   = "backup"
      expression = var.restore_drill_schedule
      task       = "restore-drill"
    }
    retention = {
      function   = "retention"
      expression = var.retention_schedule
      task       = "retention"
    }
  }
}

resource "aws_scheduler_schedule_group" "gallery" {
  name = var.name_prefix
}

resource "aws_scheduler_schedule" "task" {
  for_each = local.schedules

  name                         = "${var.name_prefix}-${each.key}"
  group_name                   = aws_scheduler_schedule_group.gallery.name
  description                  = "Daily ${each.value.task} run of ${local.function_names[each.value.function]}"
  schedule_expression          = each.value.expression
  schedule_expression_timezone = var.schedule_timezone
  kms_key_arn                  = aws_kms_key.ops.arn
  # While recovering, the backup function points at the lost deployment's
  # replica (which takes no writes but replication's): no backup until the
  # variable is removed again; drills and retention keep running.
  state = local.recovering && each.key == "backup" ? "DISABLED" : "ENABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.function[each.value.function].arn
    role_arn = aws_iam_role.scheduler.arn
    input = jsonencode({
      version       = "0"
      id            = "<aws.scheduler.execution-id>"
      "detail-type" = "Scheduled Event"
      source        = "aws.scheduler"
      account       = local.account_id
      time          = "<aws.scheduler.scheduled-time>"
      region        = local.region
      resources     = []
      detail        = { task = each.value.task }
    })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }

    dead_letter_config {
      arn = aws_sqs_queue.dlq.arn
    }
  }
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name_prefix}-scheduler"
  description        = "Invokes the backup and retention functions on schedule"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeScheduledFunctions"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.function["backup"].arn, aws_lambda_function.function["retention"].arn]
  }

  statement {
    sid       = "SendToDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "DecryptSchedulesAndDeadLetters"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.ops.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "invoke-scheduled-functions"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}
