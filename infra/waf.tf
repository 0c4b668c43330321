# AWS WAF in front of the whole distribution (API and renditions). A web ACL
# for CloudFront lives in us-east-1, as do its log group and that group's key.
#
# Rule order: IP reputation first (cheapest, drops known-bad sources), then
# our own body limit and rate limits, then AWS's common and known-bad-input
# rule sets, then writes from anonymising networks. Rate limits count per client IP over 5 minutes; the API's own
# per-token limit (429 with Retry-After) stops one leaked token from many IPs.

locals {
  waf_metric = replace(var.name_prefix, "-", "")
  # Writes: everything but reads and CORS preflights.
  write_methods = ["POST", "PUT", "PATCH", "DELETE"]
}

resource "aws_wafv2_web_acl" "edge" {
  provider    = aws.us_east_1
  name        = "${var.name_prefix}-edge"
  description = "Managed protections and rate limits for the gallery's distribution"
  scope       = "CLOUDFRONT"

  default_action {
    allow {}
  }

  # Bodies are inspected up to 64 KiB, the most CloudFront's web ACLs can.
  association_config {
    request_body {
      cloudfront {
        default_size_inspection_limit = "KB_64"
      }
    }
  }

  rule {
    name     = "ip-reputation"
    priority = 0

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.waf_metric}IpReputation"
      sampled_requests_enabled   = true
    }
  }

  # Most bodies are small: over 64 KiB (all the edge can inspect) they never
  # reach Lambda. The routes that carry long text (an artwork's description,
  # an artist's bio) may legally reach 240 KB in the costliest JSON encoding;
  # for them the API's own 256 KiB limit applies, as the edge cannot measure
  # beyond what it inspects.
  rule {
    name     = "body-size"
    priority = 1

    action {
      block {}
    }

    statement {
      and_statement {
        statement {
          size_constraint_statement {
            comparison_operator = "GT"
            size                = 65536

            field_to_match {
              body {
                oversize_handling = "MATCH"
              }
            }

            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }

        statement {
          not_statement {
            statement {
              regex_match_statement {
                regex_string = "^/v1/(me|me/artworks|manage/artworks/[0-9a-f-]{36}|admin/artists(/[0-9a-f-]{36})?)$"

                field_to_match {
                  uri_path {}
                }

                text_transformation {
                  priority = 0
                  type     = "NONE"
                }
              }
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.waf_metric}BodySize"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-uploads"
    priority = 2

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit                 = var.waf_upload_rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300

        scope_down_statement {
          and_statement {
            statement {
              byte_match_statement {
                search_string         = "POST"
                positional_constraint = "EXACTLY"

                field_to_match {
                  method {}
                }

                text_transformation {
                  priority = 0
                  type     = "NONE"
                }
              }
            }

            statement {
              byte_match_statement {
                search_string         = "/images"
                positional_constraint = "ENDS_WITH"

                field_to_match {
                  uri_path {}
                }

                text_transformation {
                  priority = 0
                  type     = "NONE"
                }
              }
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.waf_metric}RateUploads"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-writes"
    priority = 3

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit                 = var.waf_write_rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300

        scope_down_statement {
          regex_match_statement {
            regex_string = "^(${join("|", local.write_methods)})$"

            field_to_match {
              method {}
            }

            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.waf_metric}RateWrites"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-all"
    priority = 4

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit                 = var.waf_rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.waf_metric}RateAll"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "common"
    priority = 5

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"

        # Its 8 KB body limit is below the API's documented 64 KiB;
        # the body-size rule above enforces ours instead.
        rule_action_override {
          name = "SizeRestrictions_BODY"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.waf_metric}Common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 6

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.waf_metric}KnownBadInputs"
      sampled_requests_enabled   = true
    }
  }

  # Writes from anonymising networks (Tor, open proxies) are refused; reads
  # stay open to everyone. Hosting-provider addresses are only counted: an
  # artist's own tooling may well run in a cloud.
  rule {
    name     = "anonymous-writes"
    priority = 7

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"

        rule_action_override {
          name = "HostingProviderIPList"

          action_to_use {
            count {}
          }
        }

        scope_down_statement {
          regex_match_statement {
            regex_string = "^(${join("|", local.write_methods)})$"

            field_to_match {
              method {}
            }

            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.waf_metric}AnonymousWrites"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.waf_metric}Edge"
    sampled_requests_enabled   = true
  }
}

# --- logging --------------------------------------------------------------------

resource "aws_kms_key" "waf_logs" {
  provider                = aws.us_east_1
  description             = "${var.name_prefix}: WAF logs of the distribution (us-east-1)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.waf_logs_key.json
}

data "aws_iam_policy_document" "waf_logs_key" {
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key only
  #checkov:skip=CKV_AWS_111:In a key policy "*" means this key only; the only user is CloudWatch Logs
  statement {
    sid       = "KeyAdministrationByAccount"
    actions   = local.key_admin_actions
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root_arn]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsWafLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.us-east-1.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:us-east-1:${local.account_id}:log-group:aws-waf-logs-${var.name_prefix}"]
    }
  }
}

# WAF requires the aws-waf-logs- prefix.
resource "aws_cloudwatch_log_group" "waf" {
  provider          = aws.us_east_1
  name              = "aws-waf-logs-${var.name_prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.waf_logs.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "edge" {
  provider                = aws.us_east_1
  resource_arn            = aws_wafv2_web_acl.edge.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # Credentials never reach the logs.
  redacted_fields {
    single_header {
      name = "x-gallery-token"
    }
  }

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}
