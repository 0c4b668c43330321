# The operator role: what `gallery-ops` runs as. There are no admin hosts and
# no network path into the VPC; an operator task is a Lambda invocation of the
# function that owns it, so IAM decides who may run it, CloudTrail records the
# call, and the function proves the caller's identity with STS before writing
# the audit entry. Only this role is granted lambda:InvokeFunction on the
# functions, and the functions accept operator tasks only from its sessions
# (GALLERY_OPERATOR_ROLE_NAME).

locals {
  operator_role_name = "${var.name_prefix}-operator"
  operator_functions = ["api", "backup", "retention"]
}

# Operators sign in through IAM Identity Center, which enforces the second
# factor at sign-in; its sessions never carry aws:MultiFactorAuthPresent, so
# the trust names the permission set's roles (the account delegates, and the
# condition picks those roles; their suffix changes when Identity Center
# re-provisions them, hence the wildcard).
locals {
  operator_session_arns = [
    "arn:${local.partition}:iam::${local.account_id}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_${var.operator_permission_set}_*",
    "arn:${local.partition}:iam::${local.account_id}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_${var.operator_permission_set}_*",
  ]
}

data "aws_iam_policy_document" "operator_assume" {
  statement {
    sid     = "IdentityCenterOperators"
    actions = ["sts:AssumeRole", "sts:SetSourceIdentity"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root_arn]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = local.operator_session_arns
    }
  }
}

resource "aws_iam_role" "operator" {
  name                 = local.operator_role_name
  description          = "Runs gallery-ops operator tasks (tokens, backups, drills, retention previews)"
  assume_role_policy   = data.aws_iam_policy_document.operator_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "operator" {
  statement {
    sid       = "InvokeOperatorTasks"
    actions   = ["lambda:InvokeFunction"]
    resources = [for f in local.operator_functions : aws_lambda_function.function[f].arn]
  }
}

resource "aws_iam_role_policy" "operator" {
  name   = "operator-tasks"
  role   = aws_iam_role.operator.id
  policy = data.aws_iam_policy_document.operator.json
}
