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
