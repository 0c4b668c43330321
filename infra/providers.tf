provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project   = "copper-print-gallery"
      ManagedBy = "terraform"
    })
  }
}

# Second region, used only for the disaster-recovery copy of backups and
# processed renditions (see docs/disaster-recovery.md, "lost region").
provider "aws" {
  alias  = "dr"
  region = var.dr_region

  default_tags {
    tags = merge(var.tags, {
      Project   = "copper-print-gallery"
      ManagedBy = "terraform"
    })
  }
}

# CloudFront's web ACL, its log group and that group's key must be in us-east-1.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"

  default_tags {
    tags = merge(var.tags, {
      Project   = "copper-print-gallery"
      ManagedBy = "terraform"
    })
  }
}
