terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # State lives in a versioned, encrypted S3 bucket with native locking. The
  # bucket, key and region are supplied per environment at init time:
  #   terraform init -backend-config=environments/<env>.s3.tfbackend
  # CI checks run `terraform init -backend=false`; the emulator test replaces
  # this block with a local backend through an override file.
  backend "s3" {}
}
