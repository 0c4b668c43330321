# Customer-managed keys. Every key policy names its users; the account root
# statement only allows key administration, and grants only when an AWS
# service creates them for a resource (RDS, Lambda, Secrets Manager), so no
# administrator can grant themselves Decrypt; never data-plane use.
#
#   data    - originals/processed objects, database storage and its secret,
#             Performance Insights, Lambda environment variables
#   backups - envelope encryption of database dumps, backups bucket, DR replica
#   ops     - CloudWatch Logs, CloudTrail, alarm topic, dead-letter queue,
#             schedules, trail bucket

locals {
  key_admin_actions = [
    "kms:CreateAlias",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
  ]

  function_role_arns = { for k, r in aws_iam_role.function : k => r.arn }
}

# What every key policy starts with: the account administers the key, and
# may create grants only when an AWS service creates them for a resource.
data "aws_iam_policy_document" "key_administration" {
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key only
  #checkov:skip=CKV_AWS_111:In a key policy "*" means this key only
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
    sid       = "GrantsOnlyForAwsServices"
    actions   = ["kms:CreateGrant"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root_arn]
    }

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

# The break-glass recovery role (infra/recovery.tf) may grant a recovery
# deployment's backup role exactly Decrypt (and DescribeKey) on the keys that
# protect the DR copies: the backups key's replica and the DR key.
data "aws_iam_policy_document" "recovery_delegates" {
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key only
  #checkov:skip=CKV_AWS_111:In a key policy "*" means this key only
  statement {
    sid       = "RecoveryDelegatesToRecoveryBackupRole"
    actions   = ["kms:CreateGrant"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.recovery.arn]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "kms:GrantOperations"
      values   = ["Decrypt", "DescribeKey"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:GranteePrincipal"
      values   = ["arn:${local.partition}:iam::${local.account_id}:role/*-backup"]
    }
  }
}

# --- data key ------------------------------------------------------------------

resource "aws_kms_key" "data" {
  #checkov:skip=CKV2_AWS_64:The policy is aws_kms_key_policy.data: it names the distribution, which depends on the functions that use this key
  description             = "${var.name_prefix}: gallery objects, database and its secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

# A separate resource because CloudFront's statement names the distribution,
# and the distribution (through the API function) depends on this key.
resource "aws_kms_key_policy" "data" {
  key_id = aws_kms_key.data.id
  policy = data.aws_iam_policy_document.data_key.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.name_prefix}-data"
  target_key_id = aws_kms_key.data.key_id
}

data "aws_iam_policy_document" "data_key" {
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key only
  #checkov:skip=CKV_AWS_111:In a key policy "*" means this key only; writers are named principals
  source_policy_documents = [data.aws_iam_policy_document.key_administration.json, data.aws_iam_policy_document.cloudfront_decrypts_renditions["primary"].json]

  # IAM principals of the account (the deployer, operators) may use the key
  # only through the services that provision or read resources encrypted
  # with it, and only when their own IAM policy also allows it.
  statement {
    sid       = "AccountUseOnlyThroughServices"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["rds.${local.region}.amazonaws.com", "secretsmanager.${local.region}.amazonaws.com", "lambda.${local.region}.amazonaws.com", "s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "FunctionsReadDatabaseSecret"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = values(local.function_role_arns)
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  # A browser's presigned POST is the API role's request: S3 asks KMS for
  # the data key as that role, through S3, for the originals bucket only.
  statement {
    sid       = "ApiPresignedUploadsToOriginals"
    actions   = ["kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.function_role_arns["api"]]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = ["arn:${local.partition}:s3:::${local.bucket_names.originals}"]
    }
  }

  statement {
    sid       = "ImageProcessorObjects"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.function_role_arns["image_processor"]]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  # Artists' previews: presigned GETs signed by the API's role.
  statement {
    sid       = "ApiPreviewsRenditions"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.function_role_arns["api"]]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "S3ReplicationReadsProcessed"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.replication.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

# --- backups key -----------------------------------------------------------------

# Multi-Region: its replica in the recovery region shares the key material and
# id, so every backup's data key unwraps there after the primary region is
# lost, while the backup function only ever calls KMS in its own region
# (through the VPC endpoint: no cross-region traffic, one KMS call a backup).
resource "aws_kms_key" "backups" {
  description             = "${var.name_prefix}: envelope encryption of database backups"
  multi_region            = true
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.backups_key.json
}

resource "aws_kms_alias" "backups" {
  name          = "alias/${var.name_prefix}-backups"
  target_key_id = aws_kms_key.backups.key_id
}

data "aws_iam_policy_document" "backups_key" {
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key only
  #checkov:skip=CKV_AWS_111:In a key policy "*" means this key only; writers are named principals
  source_policy_documents = [data.aws_iam_policy_document.key_administration.json, data.aws_iam_policy_document.recovery_delegates.json]

  statement {
    sid       = "BackupFunctionEnvelopeEncryption"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.function_role_arns["backup"]]
    }
  }

  # The erasure ledger (erasures/ in the backups bucket): retention writes
  # each record through S3 (IAM limits its objects to erasures/*, and it
  # reads none of the bucket).
  statement {
    sid       = "RetentionWritesErasureLedger"
    actions   = ["kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.function_role_arns["retention"]]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = ["arn:${local.partition}:s3:::${local.bucket_names.backups}"]
    }
  }

  # The API writes an erasure request's record when it is asked (the same
  # prefix, through S3).
  statement {
    sid       = "ApiWritesErasureRequests"
    actions   = ["kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.function_role_arns["api"]]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = ["arn:${local.partition}:s3:::${local.bucket_names.backups}"]
    }
  }

  # Ledger seals (archive/ledger.rs): only the writers of records may make
  # one, only with the ledger's context; any role that may Decrypt with this
  # key (backup, recovery) can check one, in either Region.
  statement {
    sid       = "WritersSealErasureRecords"
    actions   = ["kms:Encrypt"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.function_role_arns["api"], local.function_role_arns["retention"]]
    }

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

  # After a lost region (docs/disaster-recovery.md): the break-glass recovery
  # role unwraps backups with the replica in the DR region, and delegates
  # exactly that to a recovery deployment's backup role by a grant
  # (recovery_delegates).
  statement {
    sid       = "RecoveryOpensBackups"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.recovery.arn]
    }
  }

  statement {
    sid       = "S3ReplicationReadsBackups"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.replication.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

# --- ops key -------------------------------------------------------------------

resource "aws_kms_key" "ops" {
  description             = "${var.name_prefix}: logs, audit trail, alarms, queues and schedules"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.ops_key.json
}

resource "aws_kms_alias" "ops" {
  name          = "alias/${var.name_prefix}-ops"
  target_key_id = aws_kms_key.ops.key_id
}

data "aws_iam_policy_document" "ops_key" {
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key only
  #checkov:skip=CKV_AWS_111:In a key policy "*" means this key only; writers are named principals
  source_policy_documents = [data.aws_iam_policy_document.key_administration.json]

  # IAM principals of the account (the deployer, operators) may use the key
  # only through the services that provision or read resources encrypted
  # with it, and only when their own IAM policy also allows it.
  statement {
    sid       = "AccountUseOnlyThroughServices"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com", "sns.${local.region}.amazonaws.com", "scheduler.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsOurLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "CloudTrailEncryptsOurTrail"
    actions   = ["kms:GenerateDataKey*"]
    resources = ["*"]

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
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:cloudtrail:arn"
      values   = ["arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"]
    }
  }

  # The trail bucket uses an S3 Bucket Key: CloudTrail needs Decrypt on the
  # key to deliver into it ("Configure AWS KMS key policies for CloudTrail").
  statement {
    sid       = "CloudTrailDeliversToBucketKeyBucket"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

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

  # EventBridge publishes GuardDuty and Security Hub findings to the
  # encrypted alarm topic; SNS documents that these key statements cannot
  # carry aws:SourceArn/SourceAccount for EventBridge, so the topic policy
  # scopes the rules instead.
  statement {
    sid       = "EventBridgePublishesFindings"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }

  statement {
    sid       = "CloudTrailDescribesKey"
    actions   = ["kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

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

  statement {
    sid       = "AsyncFunctionsWriteDeadLetterQueue"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [for k in local.async_functions : local.function_role_arns[k]]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "SchedulerReadsSchedulesAndWritesDeadLetterQueue"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.scheduler.arn]
    }
  }
}

# The backups key in the recovery region: same key material and id, and the
# primary's own policy, so a recovery deployment of the backup function (its
# role is global, as IAM is) restores, and takes new backups, there exactly as
# here.
# A multi-Region key's replica has the primary's key id in the DR Region:
# its ARN is known whether or not this configuration creates it.
locals {
  backups_replica_key_arn = replace(aws_kms_key.backups.arn, ":${local.region}:", ":${var.dr_region}:")
}

resource "aws_kms_replica_key" "backups_dr" {
  count    = var.enable_kms_replica ? 1 : 0
  provider = aws.dr

  description             = aws_kms_key.backups.description
  primary_key_arn         = aws_kms_key.backups.arn
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.backups_key.json
}

resource "aws_kms_alias" "backups_dr" {
  count    = var.enable_kms_replica ? 1 : 0
  provider = aws.dr

  name          = "alias/${var.name_prefix}-backups"
  target_key_id = aws_kms_replica_key.backups_dr[0].key_id
}

# --- DR region key (replica bucket) ----------------------------------------------

resource "aws_kms_key" "dr" {
  provider = aws.dr

  description             = "${var.name_prefix}: disaster-recovery replicas"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.dr_key.json
}

resource "aws_kms_alias" "dr" {
  provider = aws.dr

  name          = "alias/${var.name_prefix}-dr"
  target_key_id = aws_kms_key.dr.key_id
}

data "aws_iam_policy_document" "dr_key" {
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key only
  #checkov:skip=CKV_AWS_111:In a key policy "*" means this key only; writers are named principals
  source_policy_documents = [
    data.aws_iam_policy_document.key_administration.json,
    data.aws_iam_policy_document.recovery_delegates.json,
    data.aws_iam_policy_document.cloudfront_decrypts_renditions["dr"].json,
  ]

  statement {
    sid       = "RecoveryReadsReplicas"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.recovery.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.dr_region}.amazonaws.com"]
    }
  }

  # RDS replicates the database's automated backups into the DR Region
  # under this key (database.tf), and restores from them there: RDS uses the
  # key on behalf of the account's principals, only through RDS in that Region.
  statement {
    sid       = "RdsReplicatesAutomatedBackups"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["rds.${var.dr_region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "S3ReplicationWritesReplicas"
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.replication.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.dr_region}.amazonaws.com"]
    }
  }
}
