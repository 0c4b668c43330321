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

data "aws_iam_policy_document" "operator_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = length(var.operator_principal_arns) > 0 ? var.operator_principal_arns : [local.account_root_arn]
    }

    # A person at 3 a.m. still signs in with a second factor.
    condition {
      test     = "Bool"
      variable = "aws:MultiFactorAuthPresent"
      values   = ["true"]
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
