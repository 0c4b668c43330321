data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  dns_suffix = data.aws_partition.current.dns_suffix
  azs        = slice(data.aws_availability_zones.available.names, 0, 2)

  account_root_arn = "arn:${local.partition}:iam::${local.account_id}:root"

  bucket_names = {
    originals = "${var.name_prefix}-originals"
    processed = "${var.name_prefix}-processed"
    backups   = "${var.name_prefix}-backups"
    logs      = "${var.name_prefix}-logs"
    trail     = "${var.name_prefix}-trail"
  }

  function_names = {
    api             = "${var.name_prefix}-api"
    image_processor = "${var.name_prefix}-image-processor"
    backup          = "${var.name_prefix}-backup"
    retention       = "${var.name_prefix}-retention"
  }

  # Folder names of the cargo-lambda output (target/lambda/<folder>/bootstrap.zip).
  function_folders = {
    api             = "api"
    image_processor = "image-processor"
    backup          = "backup"
    retention       = "retention"
  }

  # Functions invoked asynchronously (S3 notification, schedules): they get a
  # dead-letter queue. The API is invoked synchronously through its URL.
  async_functions = toset(["image_processor", "backup", "retention"])

  trail_name = "${var.name_prefix}-trail"
  # Built from parts (not the resource attribute) so the trail bucket policy
  # can name the trail before the trail exists.
  trail_arn = "arn:${local.partition}:cloudtrail:${local.region}:${local.account_id}:trail/${local.trail_name}"

  db_identifier = "${var.name_prefix}-db"
  db_port       = 5432

  metric_namespace = "CopperGallery"
}
