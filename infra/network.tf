# Private-only network: no internet gateway, no NAT, no public subnets. The
# functions reach AWS APIs through VPC endpoints and the database directly.

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = "${var.name_prefix}-vpc" }
}

# Lock down the default security group: no rules at all.
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id

  tags = { Name = "${var.name_prefix}-default-deny" }
}

resource "aws_subnet" "private" {
  count = 2

  vpc_id                  = aws_vpc.main.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  map_public_ip_on_launch = false

  tags = { Name = "${var.name_prefix}-private-${local.azs[count.index]}" }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id

  tags = { Name = "${var.name_prefix}-private" }
}

resource "aws_route_table_association" "private" {
  count = 2

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

# --- Security groups ---------------------------------------------------------

resource "aws_security_group" "functions" {
  name        = "${var.name_prefix}-functions"
  description = "Gallery Lambda functions: egress only to VPC endpoints, S3 and the database"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${var.name_prefix}-functions" }
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name_prefix}-endpoints"
  description = "Interface VPC endpoints: HTTPS from the gallery functions only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${var.name_prefix}-endpoints" }
}

resource "aws_security_group" "database" {
  name        = "${var.name_prefix}-database"
  description = "Gallery PostgreSQL: ingress only from the gallery functions"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${var.name_prefix}-database" }
}

resource "aws_vpc_security_group_egress_rule" "functions_to_endpoints" {
  security_group_id            = aws_security_group.functions.id
  description                  = "HTTPS to interface endpoints (KMS, Secrets Manager, Logs, STS)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "functions_to_s3" {
  security_group_id = aws_security_group.functions.id
  description       = "HTTPS to S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "functions_to_database" {
  security_group_id            = aws_security_group.functions.id
  description                  = "PostgreSQL to the gallery database"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_functions" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the gallery functions"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.functions.id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_functions" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the gallery functions"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.functions.id
}

# --- VPC endpoints -------------------------------------------------------------

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]

  # Only our own buckets are reachable through the endpoint.
  policy = data.aws_iam_policy_document.s3_endpoint.json

  tags = { Name = "${var.name_prefix}-s3" }
}

# A gateway endpoint's policy must name its principals "*" and narrow them
# with a condition: naming the account root there admits the root user only
# ("Principals for gateway endpoints", AWS PrivateLink guide), which would
# refuse every function's S3 request.
data "aws_iam_policy_document" "s3_endpoint" {
  statement {
    sid       = "GalleryBucketsOnly"
    actions   = ["s3:*"]
    resources = flatten([for b in distinct([local.bucket_names.originals, local.bucket_names.processed, local.bucket_names.backups, local.backups_source.bucket]) : ["arn:${local.partition}:s3:::${b}", "arn:${local.partition}:s3:::${b}/*"]])

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [local.account_id]
    }
  }
}

# The DR region's S3, privately: retention deletes every version in the
# replica buckets too (S3 never replicates the deletion of a version), and a
# gateway endpoint serves only its own region. A cross-Region interface
# endpoint reaches the DR region's S3 from these subnets without a NAT; the
# function addresses it by its endpoint-specific name (GALLERY_DR_S3_ENDPOINT).
resource "aws_vpc_endpoint" "s3_dr" {
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${var.dr_region}.s3"
  service_region      = var.dr_region
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = false

  # Only the two replica buckets are reachable through it.
  policy = data.aws_iam_policy_document.s3_dr_endpoint.json

  tags = { Name = "${var.name_prefix}-s3-${var.dr_region}" }
}

data "aws_iam_policy_document" "s3_dr_endpoint" {
  statement {
    sid       = "ReplicaBucketsOnly"
    actions   = ["s3:*"]
    resources = flatten([for b in local.replicated_buckets : ["arn:${local.partition}:s3:::${local.bucket_names[b]}-dr", "arn:${local.partition}:s3:::${local.bucket_names[b]}-dr/*"]])

    # The same form as the gateway's (an interface endpoint would accept the
    # account root as "every principal of the account", but one rule reads
    # more safely than two).
    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [local.account_id]
    }
  }
}

# The DR region's KMS, privately: the backup function's daily drill proves
# the DR copy with the backups key's replica there (cross-Region PrivateLink
# serves KMS too). Addressed by its endpoint-specific name (GALLERY_DR_KMS_ENDPOINT).
resource "aws_vpc_endpoint" "kms_dr" {
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${var.dr_region}.kms"
  service_region      = var.dr_region
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = false

  tags = { Name = "${var.name_prefix}-kms-${var.dr_region}" }
}

locals {
  dr_kms_endpoint = "https://${aws_vpc_endpoint.kms_dr.dns_entry[0].dns_name}"

  # The endpoint-specific DNS name is `*.vpce-….s3.<region>.vpce.amazonaws.com`;
  # SDKs take it with `bucket.` in place of the wildcard (AWS PrivateLink for S3).
  dr_s3_endpoint = "https://bucket.${trimprefix(aws_vpc_endpoint.s3_dr.dns_entry[0].dns_name, "*.")}"

  # Every AWS API the functions call besides S3 (STS: checking operator identity proofs).
  interface_endpoints = toset(["kms", "secretsmanager", "logs", "sts"])
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true

  tags = { Name = "${var.name_prefix}-${each.key}" }
}

# --- Flow logs -----------------------------------------------------------------

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/${var.name_prefix}/vpc-flow-logs"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.ops.arn
}

resource "aws_flow_log" "main" {
  vpc_id                   = aws_vpc.main.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 60

  tags = { Name = "${var.name_prefix}-flow-logs" }
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "${var.name_prefix}-flow-logs"
  description        = "Delivers VPC flow logs to their log group"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid       = "WriteFlowLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.flow_logs.arn, "${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}
