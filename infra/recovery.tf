# Break-glass recovery after a lost region (docs/disaster-recovery.md).
#
# A recovery deployment needs a new name_prefix (bucket and role names are
# global), so none of its roles is named in this deployment's keys. This role
# is: it exists before the region is lost (IAM is global), an operator assumes
# it only during an incident (CloudTrail alarms on it), and it can
#   - read the *-dr replicas in the DR region (DR key, through S3 there),
#   - open backups with the backups key's replica (same key material),
#   - grant a recovery deployment's backup role (a role named *-backup in this
#     account) exactly Decrypt on those two keys, so that function restores
#     the replica with the code path the daily drill proves.
# It cannot write, delete, or touch the data key.

resource "aws_iam_role" "recovery" {
  name                 = "${var.name_prefix}-recovery"
  description          = "Break-glass: read the DR replicas and delegate their decryption to a recovery deployment"
  assume_role_policy   = data.aws_iam_policy_document.operator_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "recovery" {
  statement {
    sid       = "ListReplicas"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions"]
    resources = [for k in local.replicated_buckets : aws_s3_bucket.dr[k].arn]
  }

  statement {
    sid       = "ReadReplicas"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"]
    resources = [for k in local.replicated_buckets : "${aws_s3_bucket.dr[k].arn}/*"]
  }

  statement {
    sid       = "DecryptReplicasThroughS3"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.dr.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.dr_region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "OpenBackupsWithReplicaKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = concat([aws_kms_key.backups.arn], aws_kms_replica_key.backups_dr[*].arn)
  }

  statement {
    sid       = "DelegateToRecoveryBackupRole"
    actions   = ["kms:CreateGrant"]
    resources = concat([aws_kms_key.dr.arn], aws_kms_replica_key.backups_dr[*].arn)

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

resource "aws_iam_role_policy" "recovery" {
  name   = "recover-from-replicas"
  role   = aws_iam_role.recovery.id
  policy = data.aws_iam_policy_document.recovery.json
}
