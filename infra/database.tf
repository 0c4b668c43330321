# PostgreSQL in the private subnets, encrypted with the data key, TLS-only,
# master password generated and kept by RDS in Secrets Manager.

resource "aws_db_subnet_group" "main" {
  name        = "${var.name_prefix}-db"
  description = "Private subnets of the gallery database"
  subnet_ids  = aws_subnet.private[*].id
}

resource "aws_db_parameter_group" "main" {
  name        = "${var.name_prefix}-postgres${split(".", var.db_engine_version)[0]}"
  family      = "postgres${split(".", var.db_engine_version)[0]}"
  description = "Gallery PostgreSQL: TLS only, connection and slow-query logging without values"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Explicit, so the functions' connection budget is checked against a number
  # rather than RDS's memory-based default. A static parameter: applied on reboot.
  parameter {
    name         = "max_connections"
    value        = tostring(var.db_max_connections)
    apply_method = "pending-reboot"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  # Personal data stays out of CloudWatch (365 days): a logged slow statement
  # or failed statement carries no bound value, and an error no DETAIL (a
  # unique violation's DETAIL quotes the duplicate email).
  parameter {
    name  = "log_parameter_max_length"
    value = "0"
  }

  parameter {
    name  = "log_parameter_max_length_on_error"
    value = "0"
  }

  parameter {
    name  = "log_error_verbosity"
    value = "terse"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Password of each function's database role. Terraform creates the secret
# (encrypted with the data key) but never holds the value: the operator stores
# a generated password (docs/change-management.md) and the migrate task gives
# the role that login.
resource "aws_secretsmanager_secret" "db_function" {
  #checkov:skip=CKV2_AWS_57:The value is a PostgreSQL role password set through the migrate task; it is rotated by the runbook in docs/security.md, a rotation function would need the owner credentials
  for_each = local.db_function_roles

  name                    = "${var.name_prefix}/database/${each.value}"
  description             = "Password of the ${each.value} database role (the ${each.key} function's login)"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = 30
}

# Password of the read-only backup role (the daily snapshot). Set like the
# application role's: the operator stores a generated value, and
# `gallery-ops database migrate` gives the role that login.
resource "aws_secretsmanager_secret" "db_backup" {
  #checkov:skip=CKV2_AWS_57:The value is a PostgreSQL role password set through the migrate task; rotated by the runbook in docs/security.md
  name                    = "${var.name_prefix}/database/${var.db_backup_username}"
  description             = "Password of the ${var.db_backup_username} database role (read-only, backups)"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = 30
}

# Created before the instance so the exported logs get our retention and key.
resource "aws_cloudwatch_log_group" "database" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${local.db_identifier}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.ops.arn
}

resource "aws_db_instance" "main" {
  #checkov:skip=CKV_AWS_118:Enhanced monitoring needs an extra role with an AWS-managed policy; Performance Insights (KMS-encrypted) and CloudWatch metrics and alarms cover monitoring
  identifier     = local.db_identifier
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class
  port           = local.db_port

  db_name                       = var.db_name
  username                      = var.db_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.data.arn

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_allocated_storage_gb * 5
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.data.arn

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az
  parameter_group_name   = aws_db_parameter_group.main.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = true

  backup_retention_period  = var.db_backup_retention_days
  backup_window            = "00:30-01:30"
  maintenance_window       = "sun:03:00-sun:04:00"
  copy_tags_to_snapshot    = true
  delete_automated_backups = false
  deletion_protection      = true
  # No final snapshot: a manual snapshot never expires, so it would keep
  # every artist's personal data outside the retention policy forever. A
  # deleted instance keeps its automated backups (delete_automated_backups =
  # false) for their retention window, and so does their DR replica; the
  # daily dumps follow the GFS rotation, and every restore replays the
  # erasure ledger (docs/retention.md, "database-snapshots").
  skip_final_snapshot = true

  auto_minor_version_upgrade = true
  apply_immediately          = false

  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.data.arn
  performance_insights_retention_period = 7

  depends_on = [aws_cloudwatch_log_group.database]
}

# Region loss with an RPO of minutes: RDS replicates the instance's automated
# backups and transaction logs into the DR Region (encrypted with the DR
# Region's key), so the database can be restored there to any second of the
# retention window (docs/disaster-recovery.md, "Lost region"). The daily
# encrypted dump in the replicated backups bucket is the independent fallback.
resource "aws_db_instance_automated_backups_replication" "dr" {
  count    = var.enable_rds_backup_replication ? 1 : 0
  provider = aws.dr

  source_db_instance_arn = aws_db_instance.main.arn
  kms_key_id             = aws_kms_key.dr.arn
  retention_period       = var.db_backup_retention_days
}
