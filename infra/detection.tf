# Threat detection, as the infrastructure decision asks ("alerts for
# suspicious activities", "regular security audits"): GuardDuty watches
# S3 data events, RDS logins and the functions' network traffic; Security Hub
# audits the account continuously against AWS Foundational Security Best
# Practices; CloudTrail Insights (audit.tf) flags unusual API call and error
# rates. Findings reach the alarm topic through EventBridge; docs/security.md,
# "Detection", maps each finding type to its runbook step.

resource "aws_guardduty_detector" "main" {
  #checkov:skip=CKV2_AWS_3:The gallery's account enables its own detector in its region; organization-wide auto-enable is configured by an Organization's delegated administrator, not by this workload
  count = var.enable_guardduty ? 1 : 0

  enable                       = true
  finding_publishing_frequency = "FIFTEEN_MINUTES"
}

resource "aws_guardduty_detector_feature" "main" {
  for_each = var.enable_guardduty ? toset(["S3_DATA_EVENTS", "RDS_LOGIN_EVENTS", "LAMBDA_NETWORK_LOGS"]) : toset([])

  detector_id = aws_guardduty_detector.main[0].id
  name        = each.key
  status      = "ENABLED"
}

resource "aws_securityhub_account" "main" {
  count = var.enable_security_hub ? 1 : 0

  # The one standard is subscribed explicitly below.
  enable_default_standards  = false
  auto_enable_controls      = true
  control_finding_generator = "SECURITY_CONTROL"
}

resource "aws_securityhub_standards_subscription" "fsbp" {
  count = var.enable_security_hub ? 1 : 0

  standards_arn = "arn:${local.partition}:securityhub:${local.region}::standards/aws-foundational-security-best-practices/v/1.0.0"
  depends_on    = [aws_securityhub_account.main]
}

locals {
  # GuardDuty's own findings (medium and above) and Security Hub's failed
  # controls (high and critical; GuardDuty's findings re-imported there are
  # left out so each finding pages once).
  finding_rules = merge(
    var.enable_guardduty ? {
      guardduty = {
        description = "GuardDuty findings of medium severity or above"
        pattern = {
          source        = ["aws.guardduty"]
          "detail-type" = ["GuardDuty Finding"]
          detail        = { severity = [{ numeric = [">=", 4] }] }
        }
      }
    } : {},
    var.enable_security_hub ? {
      securityhub = {
        description = "Security Hub high and critical findings (not GuardDuty's, which page on their own)"
        pattern = {
          source        = ["aws.securityhub"]
          "detail-type" = ["Security Hub Findings - Imported"]
          detail = {
            findings = {
              Severity    = { Label = ["HIGH", "CRITICAL"] }
              Workflow    = { Status = ["NEW"] }
              RecordState = ["ACTIVE"]
              ProductName = [{ "anything-but" = "GuardDuty" }]
            }
          }
        }
      }
    } : {},
  )
}

resource "aws_cloudwatch_event_rule" "findings" {
  for_each = local.finding_rules

  name          = "${var.name_prefix}-${each.key}-findings"
  description   = each.value.description
  event_pattern = jsonencode(each.value.pattern)
}

resource "aws_cloudwatch_event_target" "findings" {
  for_each = local.finding_rules

  rule      = aws_cloudwatch_event_rule.findings[each.key].name
  target_id = "alarm-topic"
  arn       = aws_sns_topic.alarms.arn
}
