# One execution role per function with only the actions and resources that
# function uses. `cargo xtask access-review` renders these from the plan and
# fails on any wildcard that is not justified in access-review-allowlist.json.

locals {
  bucket_arn = { for k, b in aws_s3_bucket.gallery : k => b.arn }
  subnet_arns = [
    for s in aws_subnet.private : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${s.id}"
  ]
  eni_arn_pattern = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"
}

data "aws_iam_policy_document" "function" {
  for_each = local.function_names

  # --- common to every function -------------------------------------------------
  statement {
    sid       = "WriteOwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  statement {
    sid     = "ReadDatabaseSecret"
    actions = ["secretsmanager:GetSecretValue"]
    # Each function its own role's password. Only the backup function reads
    # the read-only backup role's (the daily snapshot), the owner's
    # credentials (migrations, restores and drills, fetched only when one of
    # them runs) and the other functions' (the migrate task gives each role
    # its login).
    resources = each.key == "backup" ? concat(
      values(aws_secretsmanager_secret.db_function)[*].arn,
      [aws_secretsmanager_secret.db_backup.arn, aws_db_instance.main.master_user_secret[0].secret_arn],
    ) : [aws_secretsmanager_secret.db_function[each.key].arn]
  }

  statement {
    sid       = "DecryptDatabaseSecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  # Equivalent of AWSLambdaVPCAccessExecutionRole, scoped to our subnets,
  # security group and this account's network interfaces.
  statement {
    sid       = "VpcDescribe"
    actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    resources = ["*"]
  }

  statement {
    sid       = "VpcCreateInterfaces"
    actions   = ["ec2:CreateNetworkInterface"]
    resources = concat([local.eni_arn_pattern, aws_security_group.functions.arn], local.subnet_arns)
  }

  statement {
    sid       = "VpcManageInterfaces"
    actions   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
    resources = [local.eni_arn_pattern]
  }

  # --- api -----------------------------------------------------------------------
  dynamic "statement" {
    for_each = each.key == "api" ? ["api"] : []

    content {
      sid       = "PresignOriginalUploads"
      actions   = ["s3:PutObject"]
      resources = ["${local.bucket_arn.originals}/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "api" ? ["api"] : []

    content {
      sid       = "EncryptOriginalUploads"
      actions   = ["kms:GenerateDataKey"]
      resources = [aws_kms_key.data.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }

  # Erasure requests: sealed into the ledger (erasures/ in the backups bucket)
  # before the API answers 202, so a restore from then on replays them.
  dynamic "statement" {
    for_each = each.key == "api" ? ["api"] : []

    content {
      sid       = "WriteErasureRequests"
      actions   = ["s3:PutObject", "s3:PutObjectRetention"]
      resources = ["${local.bucket_arn.backups}/erasures/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "api" ? ["api"] : []

    content {
      sid       = "EncryptErasureRequests"
      actions   = ["kms:GenerateDataKey"]
      resources = [aws_kms_key.backups.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }

  # A ledger record's seal: KMS Encrypt of its digest under the backups key,
  # only with the ledger's encryption context (archive/ledger.rs).
  dynamic "statement" {
    for_each = contains(["api", "retention"], each.key) ? [each.key] : []

    content {
      sid       = "SealErasureRecords"
      actions   = ["kms:Encrypt"]
      resources = [aws_kms_key.backups.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:purpose"
        values   = ["gallery-erasure-ledger"]
      }

      condition {
        test     = "ForAllValues:StringEquals"
        variable = "kms:EncryptionContextKeys"
        values   = ["purpose", "record"]
      }
    }
  }

  # --- image processor ---------------------------------------------------------
  dynamic "statement" {
    for_each = each.key == "image_processor" ? ["image"] : []

    content {
      sid       = "ConsumeOriginals"
      actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion"]
      resources = ["${local.bucket_arn.originals}/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "image_processor" ? ["image"] : []

    content {
      sid       = "ListOriginalVersions"
      actions   = ["s3:ListBucketVersions"]
      resources = [local.bucket_arn.originals]
    }
  }

  dynamic "statement" {
    for_each = each.key == "image_processor" ? ["image"] : []

    content {
      sid       = "WriteRenditions"
      actions   = ["s3:PutObject", "s3:PutObjectTagging"]
      resources = ["${local.bucket_arn.processed}/renditions/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "image_processor" ? ["image"] : []

    content {
      sid       = "ObjectEncryption"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [aws_kms_key.data.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }

  # Edge visibility (shared/src/media.rs): the API settles after each write,
  # retention reconciles drift; the API also signs artists' previews.
  dynamic "statement" {
    for_each = contains(["api", "retention"], each.key) ? ["edge"] : []

    content {
      sid       = "TagRenditions"
      actions   = ["s3:PutObjectTagging"]
      resources = ["${local.bucket_arn.processed}/renditions/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "api" ? ["preview"] : []

    content {
      sid       = "PreviewRenditions"
      actions   = ["s3:GetObject"]
      resources = ["${local.bucket_arn.processed}/renditions/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "api" ? ["preview"] : []

    content {
      sid       = "DecryptPreviews"
      actions   = ["kms:Decrypt"]
      resources = [aws_kms_key.data.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }

  # --- backup --------------------------------------------------------------------
  dynamic "statement" {
    for_each = each.key == "backup" ? ["backup"] : []

    content {
      sid       = "ListBackups"
      actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
      resources = distinct([local.bucket_arn.backups, "arn:${local.partition}:s3:::${local.backups_source.bucket}"])
    }
  }

  # The drill proves the DR copy every day: read only, through the DR S3
  # endpoint, opened with the backups key's replica (BackupEnvelopeEncryption).
  dynamic "statement" {
    for_each = each.key == "backup" ? ["backup"] : []

    content {
      sid       = "ReadDrCopy"
      actions   = ["s3:ListBucket", "s3:GetObject", "s3:GetObjectVersion"]
      resources = [aws_s3_bucket.dr["backups"].arn, "${aws_s3_bucket.dr["backups"].arn}/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "backup" ? ["backup"] : []

    content {
      sid = "ReadBackups"
      # Restores and drills read the version the manifest signed (GetObject
      # with versionId), and the erasure ledger beside the backups.
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = distinct(["${local.bucket_arn.backups}/*", "arn:${local.partition}:s3:::${local.backups_source.bucket}/*"])
    }
  }

  dynamic "statement" {
    for_each = each.key == "backup" ? ["backup"] : []

    content {
      sid = "WriteBackups"
      # Only backup objects and manifests (backups/), never the ledger; each
      # written under a new key (If-None-Match) and locked (PutObjectRetention:
      # COMPLIANCE can only be lengthened). Multipart uploads: a failed or
      # killed run aborts its own upload (the next run aborts those of a
      # killed one).
      actions   = ["s3:PutObject", "s3:PutObjectRetention", "s3:AbortMultipartUpload"]
      resources = ["${local.bucket_arn.backups}/backups/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "backup" ? ["backup"] : []

    content {
      sid       = "BackupEnvelopeEncryption"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"]
      resources = [aws_kms_key.backups.arn, local.backups_replica_key_arn]
    }
  }

  # --- retention -----------------------------------------------------------------
  dynamic "statement" {
    for_each = each.key == "retention" ? ["retention"] : []

    content {
      sid       = "ListExpiredObjects"
      actions   = ["s3:ListBucketVersions"]
      resources = [local.bucket_arn.originals, local.bucket_arn.processed, local.bucket_arn.backups]
    }
  }

  # The replicas in the DR region: S3 replicates delete markers but never the
  # deletion of a version, so retention purges them itself.
  dynamic "statement" {
    for_each = each.key == "retention" ? ["retention"] : []

    content {
      sid       = "ListExpiredReplicas"
      actions   = ["s3:ListBucketVersions"]
      resources = [for k in local.replicated_buckets : aws_s3_bucket.dr[k].arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "retention" ? ["retention"] : []

    content {
      sid       = "DeleteExpiredReplicas"
      actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
      resources = [for k in local.replicated_buckets : "${aws_s3_bucket.dr[k].arn}/*"]
    }
  }

  # Erasure records: the ledger every recovery path replays, under the
  # backups key. Retention writes (and locks) records, and reads nothing of
  # the backups bucket.
  dynamic "statement" {
    for_each = each.key == "retention" ? ["retention"] : []

    content {
      sid       = "WriteErasureRecords"
      actions   = ["s3:PutObject", "s3:PutObjectRetention"]
      resources = ["${local.bucket_arn.backups}/erasures/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "retention" ? ["retention"] : []

    content {
      sid       = "EncryptErasureRecords"
      actions   = ["kms:GenerateDataKey"]
      resources = [aws_kms_key.backups.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "retention" ? ["retention"] : []

    content {
      sid       = "DeleteExpiredObjects"
      actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
      resources = ["${local.bucket_arn.originals}/*", "${local.bucket_arn.processed}/*", "${local.bucket_arn.backups}/*"]
    }
  }

  # --- asynchronous functions: dead-letter queue -----------------------------------
  dynamic "statement" {
    for_each = contains(local.async_functions, each.key) ? ["dlq"] : []

    content {
      sid       = "SendToDeadLetterQueue"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.dlq.arn]
    }
  }

  dynamic "statement" {
    for_each = contains(local.async_functions, each.key) ? ["dlq"] : []

    content {
      sid       = "EncryptDeadLetters"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [aws_kms_key.ops.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sqs.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.function_names

  name   = "least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}
