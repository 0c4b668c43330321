output "api_url" {
  description = "Public HTTPS address of the API (the CloudFront distribution)."
  value       = "https://${aws_cloudfront_distribution.api.domain_name}"
}

output "api_function_url" {
  description = "IAM-authenticated function URL of the API; only the CloudFront distribution may invoke it."
  value       = aws_lambda_function_url.api.function_url
}

output "bucket_names" {
  description = "Bucket names by purpose: originals, processed, backups, trail, logs."
  value       = merge({ for k, b in aws_s3_bucket.gallery : k => b.id }, { logs = aws_s3_bucket.logs.id })
}

output "dr_bucket_names" {
  description = "Replica buckets in the DR region, by source purpose."
  value       = { for k, b in aws_s3_bucket.dr : k => b.id }
}

output "kms_key_arns" {
  description = "Customer-managed key ARNs: data, backups, ops, dr."
  value = {
    data    = aws_kms_key.data.arn
    backups = aws_kms_key.backups.arn
    ops     = aws_kms_key.ops.arn
    dr      = aws_kms_key.dr.arn
  }
}

output "function_names" {
  description = "Lambda function names by role."
  value       = { for k, f in aws_lambda_function.function : k => f.function_name }
}

output "function_role_arns" {
  description = "Execution role ARN of each function."
  value       = local.function_role_arns
}

output "database_endpoint" {
  description = "Host name of the PostgreSQL instance (reachable only from the functions' security group)."
  value       = aws_db_instance.main.address
}

output "database_secret_arn" {
  description = "Secrets Manager ARN of the RDS-managed master credentials."
  value       = aws_db_instance.main.master_user_secret[0].secret_arn
}

output "database_function_secret_arns" {
  description = "Secrets Manager ARNs holding each function's database role password, by function (values set by the operator, logins given by the migrate task)."
  value       = { for k, s in aws_secretsmanager_secret.db_function : k => s.arn }
}

output "database_backup_secret_arn" {
  description = "Secrets Manager ARN holding the read-only backup role's password (value set by the operator, login given by the migrate task)."
  value       = aws_secretsmanager_secret.db_backup.arn
}

output "backups_replica_key_arn" {
  description = "The backups key's replica in the recovery region: what a recovery deployment's backup function uses."
  value       = one(aws_kms_replica_key.backups_dr[*].arn)
}

output "alarm_topic_arn" {
  description = "SNS topic that receives every alarm."
  value       = aws_sns_topic.alarms.arn
}

output "dead_letter_queue_url" {
  description = "Dead-letter queue of the asynchronous functions and schedules."
  value       = aws_sqs_queue.dlq.id
}

output "vpc_id" {
  description = "ID of the private VPC."
  value       = aws_vpc.main.id
}

output "cloudtrail_arn" {
  description = "ARN of the multi-region audit trail."
  value       = aws_cloudtrail.main.arn
}

output "operator_role_arn" {
  description = "Role to assume (with MFA) before running gallery-ops against this deployment."
  value       = aws_iam_role.operator.arn
}

output "distribution_domain_name" {
  description = "The distribution's own domain: set public_base_url to https://<this> when there is no custom domain."
  value       = aws_cloudfront_distribution.api.domain_name
}

output "web_acl_arn" {
  description = "The WAF web ACL in front of the distribution (us-east-1)."
  value       = aws_wafv2_web_acl.edge.arn
}

output "rendition_events_queue_url" {
  description = "The processed bucket's tag and delete events, consumed by the edge function."
  value       = aws_sqs_queue.rendition_events.url
}

output "dr_region" {
  description = "The recovery region: replica buckets, the backups key's replica, and where retention also deletes."
  value       = var.dr_region
}

output "recovery_role_arn" {
  description = "Break-glass role for a lost region: reads the DR replicas and grants a recovery deployment's backup role Decrypt (docs/disaster-recovery.md)."
  value       = aws_iam_role.recovery.arn
}
