// The deployment as `terraform show -json` of a plan describes it: every role
// with its policies, every bucket, key, queue and topic with its resource
// policy, every function with its resource-based permissions. Values come
// from the plan's prior state (the applied deployment), so ARNs are real.

const parse = (v) => (typeof v === 'string' && v !== '' ? JSON.parse(v) : v)

export class Deployment {
  constructor(plan) {
    const resources = plan.prior_state?.values?.root_module?.resources ?? []
    const managed = (type) => resources.filter((r) => r.mode === 'managed' && r.type === type)
    const data = (type) => resources.find((r) => r.mode === 'data' && r.type === type)?.values
    this.variables = Object.fromEntries(Object.entries(plan.variables ?? {}).map(([k, v]) => [k, v.value]))
    this.account = data('aws_caller_identity').account_id
    this.partition = data('aws_partition')?.partition ?? 'aws'
    this.region = data('aws_region').name
    this.drRegion = this.variables.dr_region
    this.prefix = this.variables.name_prefix

    this.roles = new Map() // name -> { name, arn, address, trust, policies: [{name, policy}] }
    for (const r of managed('aws_iam_role')) {
      this.roles.set(r.values.name, { name: r.values.name, arn: r.values.arn, address: r.address, trust: parse(r.values.assume_role_policy), policies: [] })
    }
    for (const r of managed('aws_iam_role_policy')) {
      this.roles.get(r.values.role)?.policies.push({ name: `${r.values.role}/${r.values.name}`, policy: parse(r.values.policy) })
    }
    this.managedAttachments = managed('aws_iam_role_policy_attachment').map((r) => ({ role: r.values.role, arn: r.values.policy_arn }))

    this.buckets = new Map() // name -> { name, arn, region, key, policy }
    for (const r of managed('aws_s3_bucket')) {
      this.buckets.set(r.values.bucket, { name: r.values.bucket, arn: r.values.arn, address: r.address, region: r.values.region ?? this.region })
    }
    for (const r of managed('aws_s3_bucket_policy')) {
      const b = this.buckets.get(r.values.bucket)
      if (b) b.policy = { name: `bucket policy of ${b.name}`, policy: parse(r.values.policy) }
    }
    for (const r of managed('aws_s3_bucket_server_side_encryption_configuration')) {
      const b = this.buckets.get(r.values.bucket)
      const d = r.values.rule?.[0]?.apply_server_side_encryption_by_default?.[0]
      if (b && d?.kms_master_key_id) b.key = d.kms_master_key_id
    }

    this.keys = new Map() // arn -> { arn, keyId, address, region, policy }
    for (const r of managed('aws_kms_key')) {
      this.keys.set(r.values.arn, { arn: r.values.arn, keyId: r.values.key_id, address: r.address, region: r.values.arn.split(':')[3], policy: parse(r.values.policy) })
    }
    for (const r of managed('aws_kms_replica_key')) {
      this.keys.set(r.values.arn, { arn: r.values.arn, keyId: r.values.key_id, address: r.address, region: r.values.arn.split(':')[3], policy: parse(r.values.policy) })
    }
    for (const r of managed('aws_kms_key_policy')) {
      for (const k of this.keys.values()) if (k.keyId === r.values.key_id || k.arn === r.values.key_id) k.policy = parse(r.values.policy)
    }
    this.aliases = new Map(managed('aws_kms_alias').map((r) => [r.values.name, r.values.target_key_id]))

    this.queues = new Map() // arn -> { arn, url, name, key, policy }
    for (const r of managed('aws_sqs_queue')) {
      this.queues.set(r.values.arn, { arn: r.values.arn, url: r.values.url ?? r.values.id, name: r.values.name, address: r.address, key: r.values.kms_master_key_id || null })
    }
    for (const r of managed('aws_sqs_queue_policy')) {
      for (const q of this.queues.values()) if (q.url === r.values.queue_url) q.policy = { name: `queue policy of ${q.name}`, policy: parse(r.values.policy) }
    }

    this.topics = new Map() // arn -> { arn, name, policy, key }
    for (const r of managed('aws_sns_topic')) this.topics.set(r.values.arn, { arn: r.values.arn, name: r.values.name, key: r.values.kms_master_key_id })
    for (const r of managed('aws_sns_topic_policy')) {
      const t = this.topics.get(r.values.arn)
      if (t) t.policy = { name: `topic policy of ${t.name}`, policy: parse(r.values.policy) }
    }

    this.functions = new Map() // name -> { name, arn, role, env, address, permissions: [statements] }
    for (const r of managed('aws_lambda_function')) {
      this.functions.set(r.values.function_name, {
        name: r.values.function_name,
        arn: r.values.arn,
        role: r.values.role,
        address: r.address,
        env: r.values.environment?.[0]?.variables ?? {},
        permissions: [],
      })
    }
    for (const r of managed('aws_lambda_permission')) {
      const f = this.functions.get(r.values.function_name) ?? [...this.functions.values()].find((f) => f.arn === r.values.function_name)
      if (!f) continue
      const v = r.values
      const condition = {}
      if (v.source_arn) condition.ArnLike = { 'AWS:SourceArn': v.source_arn }
      if (v.source_account) condition.StringEquals = { 'AWS:SourceAccount': v.source_account }
      if (v.function_url_auth_type) condition.StringEquals = { ...(condition.StringEquals ?? {}), 'lambda:FunctionUrlAuthType': v.function_url_auth_type }
      const principal = v.principal.includes('.amazonaws.com') ? { Service: v.principal } : { AWS: v.principal }
      f.permissions.push({ Sid: v.statement_id, Effect: 'Allow', Principal: principal, Action: v.action, Resource: f.arn, ...(Object.keys(condition).length ? { Condition: condition } : {}) })
    }

    // S3 as the functions in the VPC reach it: the gateway endpoint in the
    // primary region, the cross-Region interface endpoint in the DR region.
    this.s3Endpoints = {}
    for (const r of managed('aws_vpc_endpoint')) {
      const service = r.values.service_name ?? ''
      if (!service.endsWith('.s3') || !r.values.policy) continue
      const region = service.split('.').at(-2)
      this.s3Endpoints[region] = { name: `endpoint policy of ${r.address}`, policy: parse(r.values.policy) }
    }

    const dist = managed('aws_cloudfront_distribution')[0]?.values
    this.distributionArn = dist ? `arn:${this.partition}:cloudfront::${this.account}:distribution/${dist.id}` : null
    this.eventRules = managed('aws_cloudwatch_event_rule').map((r) => r.values.arn)
    this.trailArn = managed('aws_cloudtrail')[0]?.values?.arn ?? null
  }

  role(name) {
    const r = this.roles.get(name)
    if (!r) throw new Error(`the plan has no role ${name}`)
    return r
  }

  /** The execution role of a gallery function by its Terraform key (api, image_processor, …) or of the edge function. */
  functionRole(key) {
    return this.role(`${this.prefix}-${key.replaceAll('_', '-')}`)
  }

  bucket(suffix) {
    const b = this.buckets.get(`${this.prefix}-${suffix}`)
    if (!b) throw new Error(`the plan has no bucket ${this.prefix}-${suffix}`)
    return b
  }

  key(address) {
    for (const k of this.keys.values()) if (k.address === address) return k
    throw new Error(`the plan has no key ${address}`)
  }

  keyByArn(arn) {
    const k = this.keys.get(arn) ?? [...this.keys.values()].find((k) => k.keyId === arn)
    if (!k) throw new Error(`the plan has no key ${arn}`)
    return k
  }

  fn(key) {
    const f = this.functions.get(`${this.prefix}-${key.replaceAll('_', '-')}`)
    if (!f) throw new Error(`the plan has no function ${key}`)
    return f
  }

  queueNamed(suffix) {
    for (const q of this.queues.values()) if (q.name === `${this.prefix}-${suffix}`) return q
    throw new Error(`the plan has no queue ${suffix}`)
  }

  lambdaPolicy(f) {
    return f.permissions.length ? { name: `resource policy of ${f.name}`, policy: { Version: '2012-10-17', Statement: f.permissions } } : undefined
  }

  keyPolicy(k) {
    return { name: `key policy of ${k.address}`, policy: k.policy }
  }
}
