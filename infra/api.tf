# The API is reachable only through CloudFront: the function URL requires
# SigV4 (AWS_IAM) and only this distribution, through its origin access
# control, may invoke it. OAC always signs, so it replaces the viewer's
# `Authorization`: clients send the gallery token in `x-gallery-token`
# (forwarded by the origin request policy) and, on POST/PUT/PATCH, the body's
# hash in `x-amz-content-sha256` (Lambda refuses unsigned payloads). Writes
# are authenticated by the application (see docs/security.md).

resource "aws_lambda_function_url" "api" {
  function_name      = aws_lambda_function.function["api"].function_name
  authorization_type = "AWS_IAM"
  invoke_mode        = "BUFFERED"
}

resource "aws_cloudfront_origin_access_control" "api" {
  name                              = "${var.name_prefix}-api"
  description                       = "CloudFront signs requests to the API function URL"
  origin_access_control_origin_type = "lambda"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# Function URLs created since October 2025 also need lambda:InvokeFunction
# for the caller; both are scoped to this distribution.
resource "aws_lambda_permission" "cloudfront_invoke_api" {
  statement_id  = "AllowCloudFrontInvokeThroughUrl"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["api"].function_name
  principal     = "cloudfront.amazonaws.com"
  source_arn    = local.distribution_arn
}

resource "aws_lambda_permission" "cloudfront_invoke_api_url" {
  statement_id           = "AllowCloudFrontOriginAccessControl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.function["api"].function_name
  principal              = "cloudfront.amazonaws.com"
  source_arn             = local.distribution_arn
  function_url_auth_type = "AWS_IAM"
}

locals {
  # AWS-managed CloudFront policies.
  cf_cache_policy_caching_disabled                = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  cf_origin_request_all_viewer_except_host_header = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
  cf_response_headers_security_headers            = "67f7725c-6f97-4210-82d7-5512b31e9d03"

  api_origin_domain = trimsuffix(trimprefix(aws_lambda_function_url.api.function_url, "https://"), "/")
  custom_domain     = var.api_certificate_arn != ""
}

resource "aws_cloudfront_distribution" "api" {
  #checkov:skip=CKV_AWS_86:CloudFront standard logging needs an ACL-enabled bucket, which BucketOwnerEnforced forbids; the function logs every request
  #checkov:skip=CKV_AWS_174:With a custom domain (api_certificate_arn) the policy is TLSv1.2_2021; without it the *.cloudfront.net default certificate cannot pin a minimum version
  #checkov:skip=CKV2_AWS_42:Custom certificate is optional (api_certificate_arn); see CKV_AWS_174
  #checkov:skip=CKV_AWS_305:API origin, there is no root object
  #checkov:skip=CKV_AWS_310:Renditions fail over to their DR replica (origin_group); the API origin is single-region, its regional failover is the DR procedure (docs/disaster-recovery.md)
  #checkov:skip=CKV2_AWS_32:The AWS-managed SecurityHeadersPolicy is attached by id (response_headers_policy_id); the check only recognises a policy resource
  #checkov:skip=CKV_AWS_374:The gallery is public worldwide; no geo restriction
  enabled         = true
  comment         = "${var.name_prefix} API"
  is_ipv6_enabled = true
  http_version    = "http2and3"
  price_class     = "PriceClass_100"
  aliases         = var.api_domain_names
  web_acl_id      = aws_wafv2_web_acl.edge.arn

  origin {
    origin_id                = "api-function-url"
    domain_name              = local.api_origin_domain
    origin_access_control_id = aws_cloudfront_origin_access_control.api.id

    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  # Published renditions (edge.tf): read through the S3 origin access control,
  # which the bucket policy lets read only objects tagged public.
  origin {
    origin_id                = "renditions"
    domain_name              = aws_s3_bucket.gallery["processed"].bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.renditions.id
  }

  # After the primary region is lost, the same URLs are served from the
  # replica in the DR region (same tags, same rule): S3 errors and timeouts
  # fail over, a 403 (not public) never does.
  origin {
    origin_id                = "renditions-dr"
    domain_name              = aws_s3_bucket.dr["processed"].bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.renditions.id
  }

  origin_group {
    origin_id = "renditions-with-failover"

    failover_criteria {
      status_codes = [500, 502, 503, 504]
    }

    member {
      origin_id = "renditions"
    }

    member {
      origin_id = "renditions-dr"
    }
  }

  # First: behaviours match in order. GET and HEAD only, cached by the
  # objects' own `Cache-Control: public, max-age=31536000, immutable`.
  ordered_cache_behavior {
    path_pattern               = "/renditions/*"
    target_origin_id           = "renditions-with-failover"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = false
    cache_policy_id            = local.cf_cache_policy_caching_optimized
    response_headers_policy_id = local.cf_response_headers_security_headers
  }

  default_cache_behavior {
    target_origin_id           = "api-function-url"
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.cf_cache_policy_caching_disabled
    origin_request_policy_id   = local.cf_origin_request_all_viewer_except_host_header
    response_headers_policy_id = local.cf_response_headers_security_headers
  }

  # The public reads may be cached at the edge for as long as the API says
  # (Cache-Control: public, max-age=60, stale-while-revalidate=300). Only
  # these paths: everything else answers `private` and is never cached.
  dynamic "ordered_cache_behavior" {
    for_each = ["/v1/artworks*", "/v1/artists/*", "/v1/openapi.json"]
    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = "api-function-url"
      viewer_protocol_policy     = "https-only"
      allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = true
      cache_policy_id            = var.enable_public_read_cache ? aws_cloudfront_cache_policy.public_reads[0].id : local.cf_cache_policy_caching_disabled
      origin_request_policy_id   = local.cf_origin_request_all_viewer_except_host_header
      response_headers_policy_id = local.cf_response_headers_security_headers
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = !local.custom_domain
    acm_certificate_arn            = local.custom_domain ? var.api_certificate_arn : null
    ssl_support_method             = local.custom_domain ? "sni-only" : null
    minimum_protocol_version       = local.custom_domain ? "TLSv1.2_2021" : "TLSv1"
  }
}

# Honours the API's own Cache-Control (min 0, so `private` and `no-store`
# are never cached); the cache key is the path, the query string and the
# Origin (CORS answers vary by it). The gallery token is not in the key:
# these routes ignore it. Not the managed UseOriginCacheControlHeaders
# policies: they key on Host, CloudFront forwards cache-key headers to the
# origin, and a function URL refuses the distribution's Host (403).
resource "aws_cloudfront_cache_policy" "public_reads" {
  count       = var.enable_public_read_cache ? 1 : 0
  name        = "${var.name_prefix}-public-reads"
  comment     = "Public gallery reads: origin Cache-Control, keyed by query string and Origin"
  min_ttl     = 0
  default_ttl = 0
  max_ttl     = 300

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_gzip   = true
    enable_accept_encoding_brotli = true
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "whitelist"
      headers {
        items = ["Origin"]
      }
    }
    query_strings_config {
      query_string_behavior = "all"
    }
  }
}
