# Published renditions, delivered by the same distribution as the API
# (`/renditions/*`), and their withdrawal from the CDN.
#
# Visibility is enforced by S3, not by the URL: the processed bucket lets
# CloudFront's origin access control read an object only when it carries the
# tag gallery-visibility=public, which the functions set from the catalogue
# (shared/src/media.rs). A draft's rendition answers 403 at the edge even at a
# guessed key. Every tag change and deletion under renditions/ is an S3 event;
# the edge function (outside the VPC: the CloudFront API has no VPC endpoint)
# batches them into invalidations. The time until a withdrawn image stops
# being served is docs/security.md, "Media at the edge".

locals {
  # The gallery's public origin: rendition URLs in API answers are absolute
  # under it. A custom domain gives it; without one, set public_base_url to the
  # distribution's domain after the first apply (the API's own environment
  # cannot name the distribution in front of it).
  public_base_url = var.public_base_url != "" ? var.public_base_url : (length(var.api_domain_names) > 0 ? "https://${var.api_domain_names[0]}" : "")

  # Built from parts, in the documented format, for every policy that names
  # the distribution (the emulator's own ARN attribute lacks the empty region).
  distribution_arn = "arn:${local.partition}:cloudfront::${local.account_id}:distribution/${aws_cloudfront_distribution.api.id}"
  edge_function    = "${var.name_prefix}-edge"

  # Where renditions live: the processed bucket and its DR replica (the
  # distribution's failover origin), by ARN.
  rendition_buckets = { primary = local.bucket_arn.processed, dr = "arn:${local.partition}:s3:::${local.bucket_names.processed}-dr" }

  # AWS-managed CloudFront policies for the S3 origin.
  cf_cache_policy_caching_optimized = "658327ea-f89d-4fab-a63d-7e88639e58f6"
}

resource "aws_cloudfront_origin_access_control" "renditions" {
  name                              = "${var.name_prefix}-renditions"
  description                       = "CloudFront signs its reads of the processed bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# Merged into the processed bucket's policy (s3.tf) and its DR replica's
# (replication.tf): the distribution fails over to the replica, whose objects
# carry the same tags (replication copies tags and their changes).
data "aws_iam_policy_document" "renditions_through_cloudfront" {
  for_each = local.rendition_buckets

  statement {
    sid       = "CloudFrontReadsPublicRenditions"
    actions   = ["s3:GetObject"]
    resources = ["${each.value}/renditions/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [local.distribution_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:ExistingObjectTag/gallery-visibility"
      values   = ["public"]
    }
  }
}

# Merged into the data key's and the DR key's policies (kms.tf): CloudFront
# decrypts renditions only through S3, only those buckets' objects, only for
# this distribution.
data "aws_iam_policy_document" "cloudfront_decrypts_renditions" {
  for_each = local.rendition_buckets

  statement {
    sid       = "CloudFrontDecryptsRenditions"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [local.distribution_arn]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [each.value, "${each.value}/renditions/*"]
    }
  }
}

# --- withdrawal: S3 events → queue → edge function → CreateInvalidation ---------

resource "aws_sqs_queue" "rendition_events" {
  name                       = "${var.name_prefix}-rendition-events"
  message_retention_seconds  = 345600
  visibility_timeout_seconds = 180
  # S3 cannot send to a queue encrypted with a key whose policy it is not in;
  # the messages hold only object keys, so SQS-managed encryption suffices.
  sqs_managed_sse_enabled = true

  redrive_policy = jsonencode({ deadLetterTargetArn = aws_sqs_queue.dlq.arn, maxReceiveCount = 10 })
}

data "aws_iam_policy_document" "rendition_events" {
  source_policy_documents = [data.aws_iam_policy_document.queue_tls_only["rendition_events"].json]

  statement {
    sid       = "ProcessedBucketSends"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.rendition_events.arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.bucket_arn.processed]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "rendition_events" {
  queue_url = aws_sqs_queue.rendition_events.id
  policy    = data.aws_iam_policy_document.rendition_events.json
}

resource "aws_s3_bucket_notification" "processed" {
  bucket = aws_s3_bucket.gallery["processed"].id

  queue {
    id            = "renditions-to-edge"
    queue_arn     = aws_sqs_queue.rendition_events.arn
    events        = ["s3:ObjectTagging:*", "s3:ObjectRemoved:*"]
    filter_prefix = "renditions/"
  }

  depends_on = [aws_sqs_queue_policy.rendition_events]
}

resource "aws_cloudwatch_log_group" "edge" {
  name              = "/aws/lambda/${local.edge_function}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.ops.arn
}

resource "aws_iam_role" "edge" {
  name               = local.edge_function
  description        = "Execution role of ${local.edge_function}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "edge" {
  statement {
    sid       = "WriteOwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.edge.arn}:*"]
  }

  statement {
    sid       = "ConsumeRenditionEvents"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.rendition_events.arn]
  }

  statement {
    sid       = "InvalidateRenditions"
    actions   = ["cloudfront:CreateInvalidation"]
    resources = [local.distribution_arn]
  }
}

resource "aws_iam_role_policy" "edge" {
  name   = "least-privilege"
  role   = aws_iam_role.edge.id
  policy = data.aws_iam_policy_document.edge.json
}

resource "aws_lambda_function" "edge" {
  #checkov:skip=CKV_AWS_50:X-Ray would need an unscoped xray:Put* permission; the function logs each invalidation with its id
  #checkov:skip=CKV_AWS_272:Artifacts are built by CI and pinned by source_code_hash; AWS Signer profiles are not used
  #checkov:skip=CKV_AWS_117:Outside the VPC on purpose: the CloudFront API has no VPC endpoint, and the function reaches nothing inside the VPC
  #checkov:skip=CKV_AWS_116:Invoked by an SQS event source mapping: failed messages return to the queue, whose redrive policy sends them to the dead-letter queue
  function_name = local.edge_function
  description   = "Processed-bucket tag and delete events → batched CloudFront invalidations"
  role          = aws_iam_role.edge.arn

  filename         = "${var.lambda_zip_dir}/edge/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_zip_dir}/edge/bootstrap.zip")
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["arm64"]

  memory_size                    = 128
  timeout                        = 30
  reserved_concurrent_executions = 2
  kms_key_arn                    = aws_kms_key.data.arn

  environment {
    variables = {
      GALLERY_DISTRIBUTION_ID = aws_cloudfront_distribution.api.id
      RUST_LOG                = "info"
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.edge.name
  }

  depends_on = [aws_iam_role_policy.edge, aws_cloudwatch_log_group.edge]
}

# Up to 500 events or 10 s per batch: an unpublished artwork's renditions
# (six per image) arrive within milliseconds of each other and leave in one
# invalidation.
resource "aws_lambda_event_source_mapping" "rendition_events" {
  event_source_arn                   = aws_sqs_queue.rendition_events.arn
  function_name                      = aws_lambda_function.edge.arn
  batch_size                         = 500
  maximum_batching_window_in_seconds = 10
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = 2
  }
}

# --- opt-in: Shield Advanced ---------------------------------------------------

# "If compliance requires" stronger DDoS protection: a Shield Advanced
# subscription (an account-level commitment made outside Terraform) and this
# protection of the distribution. WAF's rate rules (waf.tf) are the default.
resource "aws_shield_protection" "distribution" {
  count        = var.enable_shield_advanced ? 1 : 0
  name         = "${var.name_prefix}-distribution"
  resource_arn = local.distribution_arn
}
