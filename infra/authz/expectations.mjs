// The requests no test can record: what AWS services do on the gallery's
// behalf, the security promises written as requests that must be refused, and
// the lost-region recovery procedure of docs/disaster-recovery.md, step by
// step. Each row: { why, req, expect }.

const ALLOW = 'Allowed'
const DENY = 'Denied'
const OTHER_ACCOUNT = '999999999999'

function ctxS3(d, bucket, extra = {}) {
  return { 'kms:ViaService': `s3.${bucket.region}.amazonaws.com`, 'kms:EncryptionContext:aws:s3:arn': bucket.arn, 'kms:CallerAccount': d.account, ...extra }
}

/** An operator's Identity Center session (the permission set's role). */
function ssoSession(d) {
  const name = d.variables.operator_permission_set ?? 'GalleryOperator'
  return `arn:${d.partition}:iam::${d.account}:role/aws-reserved/sso.amazonaws.com/${d.region}/AWSReservedSSO_${name}_0123456789abcdef`
}

// The permission set's own policy: it may assume the gallery's operator roles.
const ssoPolicy = (d) => [{ name: 'permission set', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'], Resource: `arn:${d.partition}:iam::${d.account}:role/${d.prefix}-*` }] } }]

export function impliedRequests(d) {
  const rows = []
  const add = (why, req, expect = ALLOW) => rows.push({ why, req: { context: { 'aws:SecureTransport': 'true' }, ...req }, expect })
  const role = (name) => d.role(name)
  const dataKey = d.key('aws_kms_key.data')
  const opsKey = d.key('aws_kms_key.ops')
  const drKey = d.key('aws_kms_key.dr')

  // Operators: Identity Center session → operator role → Invoke.
  const operator = role(`${d.prefix}-operator`)
  add('an operator assumes the operator role', { principal: ssoSession(d), action: 'sts:AssumeRole', resource: operator.arn, identity: ssoPolicy(d), resourcePolicy: { name: 'trust policy of the operator role', policy: operator.trust } })
  for (const f of ['api', 'backup', 'retention']) {
    const fn = d.fn(f)
    add(`the operator invokes ${f}`, { principal: operator.arn, action: 'lambda:InvokeFunction', resource: fn.arn, identity: operator.policies, resourcePolicy: d.lambdaPolicy(fn) })
  }

  // CloudFront → the API's function URL (OAC), both permissions.
  const api = d.fn('api')
  const viaDistribution = { 'aws:SourceArn': d.distributionArn, 'aws:SourceAccount': d.account }
  add('CloudFront invokes the API function URL', { principal: 'cloudfront.amazonaws.com', action: 'lambda:InvokeFunctionUrl', resource: api.arn, context: { ...viaDistribution, 'lambda:FunctionUrlAuthType': 'AWS_IAM' }, resourcePolicy: d.lambdaPolicy(api) })
  add('CloudFront invokes the API function (function URLs since October 2025)', { principal: 'cloudfront.amazonaws.com', action: 'lambda:InvokeFunction', resource: api.arn, context: viaDistribution, resourcePolicy: d.lambdaPolicy(api) })

  // CloudFront reads a public rendition, in both regions (origin failover).
  for (const suffix of ['processed', 'processed-dr']) {
    const b = d.bucket(suffix)
    const key = d.keyByArn(b.key)
    add(`CloudFront reads a public rendition from ${suffix}`, { principal: 'cloudfront.amazonaws.com', action: 's3:GetObject', resource: `${b.arn}/renditions/a/b/800.webp`, context: { 'aws:SecureTransport': 'true', ...viaDistribution, 's3:ExistingObjectTag/gallery-visibility': 'public' }, resourcePolicy: b.policy })
    add(`CloudFront decrypts a rendition in ${suffix}`, { principal: 'cloudfront.amazonaws.com', action: 'kms:Decrypt', resource: key.arn, context: ctxS3(d, b, viaDistribution), resourcePolicy: d.keyPolicy(key) })
  }

  // S3 → image processor.
  const originals = d.bucket('originals')
  const processor = d.fn('image_processor')
  add('S3 invokes the image processor for an upload', { principal: 's3.amazonaws.com', action: 'lambda:InvokeFunction', resource: processor.arn, context: { 'aws:SourceArn': originals.arn, 'aws:SourceAccount': d.account }, resourcePolicy: d.lambdaPolicy(processor) })

  // Backups are written once (denials: the same writes without If-None-Match).
  for (const suffix of ['backups', 'backups-dr']) {
    const b = d.bucket(suffix)
    const context = { 'aws:SecureTransport': 'true', 's3:ObjectCreationOperation': 'true', 's3:if-none-match': '*', 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': b.key }
    add(`an administrator writes a new backup key in ${suffix} (If-None-Match)`, { principal: `arn:${d.partition}:iam::${d.account}:role/administrator`, action: 's3:PutObject', resource: `${b.arn}/backups/2026/12/03/x.cpgbak`, context, identity: adminPolicy(), resourcePolicy: b.policy })
  }

  // Schedules.
  const scheduler = role(`${d.prefix}-scheduler`)
  for (const f of ['backup', 'retention']) {
    const fn = d.fn(f)
    add(`the scheduler invokes ${f}`, { principal: scheduler.arn, action: 'lambda:InvokeFunction', resource: fn.arn, identity: scheduler.policies, resourcePolicy: d.lambdaPolicy(fn) })
  }
  const dlq = d.queueNamed('dlq')
  add('the scheduler sends a failed invocation to the dead-letter queue', { principal: scheduler.arn, action: 'sqs:SendMessage', resource: dlq.arn, identity: scheduler.policies, resourcePolicy: dlq.policy })
  add('the scheduler encrypts for the dead-letter queue', { principal: scheduler.arn, action: 'kms:GenerateDataKey', resource: opsKey.arn, context: { 'kms:ViaService': `sqs.${d.region}.amazonaws.com`, 'kms:CallerAccount': d.account }, identity: scheduler.policies, resourcePolicy: d.keyPolicy(opsKey) })

  // Every function writes its logs as its execution role.
  for (const fn of d.functions.values()) {
    const r = [...d.roles.values()].find((role) => role.arn === fn.role)
    const stream = `arn:${d.partition}:logs:${d.region}:${d.account}:log-group:/aws/lambda/${fn.name}:log-stream:2026/12/03/[$LATEST]0123456789abcdef`
    for (const action of ['logs:CreateLogStream', 'logs:PutLogEvents']) {
      add(`${fn.name} writes its logs: ${action}`, { principal: r.arn, action, resource: stream, context: {}, identity: r.policies })
    }
  }

  // Asynchronous functions' dead letters (Lambda uses the execution role).
  for (const f of ['image_processor', 'backup', 'retention']) {
    const r = d.functionRole(f)
    add(`${f}'s failed event goes to the dead-letter queue`, { principal: r.arn, action: 'sqs:SendMessage', resource: dlq.arn, identity: r.policies, resourcePolicy: dlq.policy })
    add(`${f}'s dead letter is encrypted`, { principal: r.arn, action: 'kms:GenerateDataKey', resource: opsKey.arn, context: { 'kms:ViaService': `sqs.${d.region}.amazonaws.com`, 'kms:CallerAccount': d.account }, identity: r.policies, resourcePolicy: d.keyPolicy(opsKey) })
  }

  // Processed bucket events → queue → edge function (event source mapping polls as the edge role).
  const processed = d.bucket('processed')
  const events = d.queueNamed('rendition-events')
  add('S3 sends a rendition tag/delete event to the queue', { principal: 's3.amazonaws.com', action: 'sqs:SendMessage', resource: events.arn, context: { 'aws:SecureTransport': 'true', 'aws:SourceArn': processed.arn, 'aws:SourceAccount': d.account }, resourcePolicy: events.policy })
  const edge = role(`${d.prefix}-edge`)
  for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']) {
    add(`the edge function's event source mapping: ${action}`, { principal: edge.arn, action, resource: events.arn, identity: edge.policies, resourcePolicy: events.policy })
  }

  // Replication of processed images and backups to the DR region.
  const replication = role(`${d.prefix}-s3-replication`)
  for (const suffix of ['processed', 'backups']) {
    const src = d.bucket(suffix)
    const dst = d.bucket(`${suffix}-dr`)
    const srcKey = d.keyByArn(src.key)
    const who = { principal: replication.arn, identity: replication.policies }
    add(`replication reads ${suffix}'s configuration`, { ...who, action: 's3:GetReplicationConfiguration', resource: src.arn, resourcePolicy: src.policy })
    for (const action of ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionTagging']) {
      add(`replication reads ${suffix}: ${action}`, { ...who, action, resource: `${src.arn}/x`, resourcePolicy: src.policy })
    }
    add(`replication decrypts ${suffix}`, { ...who, action: 'kms:Decrypt', resource: srcKey.arn, context: ctxS3(d, src), resourcePolicy: d.keyPolicy(srcKey) })
    add(`replication writes ${suffix}-dr: s3:ReplicateObject`, { ...who, action: 's3:ReplicateObject', resource: `${dst.arn}/x`, context: { 'aws:SecureTransport': 'true', 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': drKey.arn }, resourcePolicy: dst.policy })
    for (const action of ['s3:ReplicateDelete', 's3:ReplicateTags']) {
      add(`replication writes ${suffix}-dr: ${action}`, { ...who, action, resource: `${dst.arn}/x`, resourcePolicy: dst.policy })
    }
    add(`replication encrypts ${suffix}-dr`, { ...who, action: 'kms:GenerateDataKey', resource: drKey.arn, context: ctxS3(d, dst), resourcePolicy: d.keyPolicy(drKey) })
  }

  // CloudTrail delivery into the trail bucket (SSE-KMS with a bucket key).
  const trail = d.bucket('trail')
  const trailCtx = { 'aws:SourceArn': d.trailArn, 'aws:SourceAccount': d.account }
  add('CloudTrail checks the trail bucket ACL', { principal: 'cloudtrail.amazonaws.com', action: 's3:GetBucketAcl', resource: trail.arn, context: { 'aws:SecureTransport': 'true', ...trailCtx }, resourcePolicy: trail.policy })
  // The trail names its KMS key: CloudTrail asks S3 for SSE-KMS with it.
  add('CloudTrail delivers a log file', { principal: 'cloudtrail.amazonaws.com', action: 's3:PutObject', resource: `${trail.arn}/AWSLogs/${d.account}/CloudTrail/${d.region}/2026/12/03/x.json.gz`, context: { 'aws:SecureTransport': 'true', ...trailCtx, 's3:x-amz-acl': 'bucket-owner-full-control', 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': opsKey.arn }, resourcePolicy: trail.policy })
  const logs = d.buckets.get(`${d.prefix}-logs`)
  add('S3 delivers a server access log', { principal: 'logging.s3.amazonaws.com', action: 's3:PutObject', resource: `${logs.arn}/processed/2026-12-03-00-00-00-ABCDEF`, context: { 'aws:SecureTransport': 'true', 'aws:SourceArn': processed.arn, 'aws:SourceAccount': d.account }, resourcePolicy: logs.policy })
  add('CloudTrail encrypts a log file', { principal: 'cloudtrail.amazonaws.com', action: 'kms:GenerateDataKey', resource: opsKey.arn, context: { ...trailCtx, 'kms:EncryptionContext:aws:cloudtrail:arn': d.trailArn }, resourcePolicy: d.keyPolicy(opsKey) })
  add('CloudTrail writes to a bucket-key bucket (kms:Decrypt)', { principal: 'cloudtrail.amazonaws.com', action: 'kms:Decrypt', resource: opsKey.arn, context: trailCtx, resourcePolicy: d.keyPolicy(opsKey) })

  // CloudWatch Logs encrypts the functions' log groups.
  add('CloudWatch Logs encrypts a function log group', { principal: `logs.${d.region}.amazonaws.com`, action: 'kms:GenerateDataKey', resource: opsKey.arn, context: { 'kms:EncryptionContext:aws:logs:arn': `arn:${d.partition}:logs:${d.region}:${d.account}:log-group:/aws/lambda/${d.prefix}-api` }, resourcePolicy: d.keyPolicy(opsKey) })

  // Findings and alarms to the encrypted topic.
  const topic = [...d.topics.values()].find((t) => t.name === `${d.prefix}-alarms`)
  add('a CloudWatch alarm publishes', { principal: 'cloudwatch.amazonaws.com', action: 'sns:Publish', resource: topic.arn, context: { 'aws:SecureTransport': 'true', 'aws:SourceAccount': d.account }, resourcePolicy: topic.policy })
  for (const rule of d.eventRules.filter((a) => a.includes('-findings'))) {
    add(`EventBridge publishes ${rule.split('/').pop()}`, { principal: 'events.amazonaws.com', action: 'sns:Publish', resource: topic.arn, context: { 'aws:SecureTransport': 'true', 'aws:SourceArn': rule, 'aws:SourceAccount': d.account }, resourcePolicy: topic.policy })
    add(`EventBridge encrypts for the topic (${rule.split('/').pop()})`, { principal: 'events.amazonaws.com', action: 'kms:GenerateDataKey', resource: opsKey.arn, context: {}, resourcePolicy: d.keyPolicy(opsKey) })
  }

  // Lambda decrypts environment variables and RDS its storage through grants
  // that the services create for the deployer.
  add('Lambda creates its environment-variable grant for the deployer', { principal: `arn:${d.partition}:iam::${d.account}:role/deployer`, action: 'kms:CreateGrant', resource: dataKey.arn, context: { 'kms:GrantIsForAWSResource': 'true', 'kms:ViaService': `lambda.${d.region}.amazonaws.com`, 'kms:CallerAccount': d.account }, identity: adminPolicy(), resourcePolicy: d.keyPolicy(dataKey) })
  return rows
}

const adminPolicy = () => [{ name: 'AdministratorAccess', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] } }]

export function denials(d) {
  const rows = []
  const deny = (why, req) => rows.push({ why, req: { context: { 'aws:SecureTransport': 'true' }, ...req }, expect: DENY })
  const backups = d.bucket('backups')
  const backupsKey = d.key('aws_kms_key.backups')
  const dataKey = d.key('aws_kms_key.data')
  const processed = d.bucket('processed')
  const operator = d.role(`${d.prefix}-operator`)
  const recovery = d.role(`${d.prefix}-recovery`)
  const edge = d.role(`${d.prefix}-edge`)

  const readers = [
    ['the API', d.functionRole('api')],
    ['the image processor', d.functionRole('image_processor')],
    ['the operator role', operator],
    ['the edge function', edge],
  ]
  for (const [name, r] of readers) {
    deny(`${name} reads a backup`, { principal: r.arn, action: 's3:GetObject', resource: `${backups.arn}/backups/2026/12/03/x.gcb`, identity: r.policies, resourcePolicy: backups.policy })
    deny(`${name} decrypts with the backups key`, { principal: r.arn, action: 'kms:Decrypt', resource: backupsKey.arn, context: { 'kms:CallerAccount': d.account }, identity: r.policies, resourcePolicy: d.keyPolicy(backupsKey) })
    deny(`${name} decrypts with the backups key through S3`, { principal: r.arn, action: 'kms:Decrypt', resource: backupsKey.arn, context: ctxS3(d, backups), identity: r.policies, resourcePolicy: d.keyPolicy(backupsKey) })
  }
  // Backups nobody can delete early: Object Lock refuses everyone (the
  // emulator enforces it, tests/it/retention_policy.rs); IAM already refuses
  // every role but retention's, and no role may touch the lock itself.
  const functionRoles = ['api', 'image_processor', 'backup', 'retention'].map((f) => [f, d.functionRole(f)]).concat([['edge', edge], ['operator', operator]])
  for (const [name, r] of functionRoles) {
    if (name !== 'retention') {
      for (const key of ['backups/2026/12/03/x.cpgbak', 'erasures/x.json']) {
        deny(`${name} deletes a version of ${key}`, { principal: r.arn, action: 's3:DeleteObjectVersion', resource: `${backups.arn}/${key}`, identity: r.policies, resourcePolicy: backups.policy })
      }
    }
    deny(`${name} bypasses or changes Object Lock`, { principal: r.arn, action: 's3:BypassGovernanceRetention', resource: `${backups.arn}/backups/2026/12/03/x.cpgbak`, identity: r.policies, resourcePolicy: backups.policy })
    deny(`${name} changes the bucket's lock`, { principal: r.arn, action: 's3:PutBucketObjectLockConfiguration', resource: backups.arn, identity: r.policies, resourcePolicy: backups.policy })
  }
  // Written once: a write without If-None-Match is refused by the bucket
  // policy in both regions, even to an administrator (with it, it is not:
  // impliedRequests).
  const administrator = `arn:${d.partition}:iam::${d.account}:role/administrator`
  for (const suffix of ['backups', 'backups-dr']) {
    const b = d.bucket(suffix)
    const write = { 'aws:SecureTransport': 'true', 's3:ObjectCreationOperation': 'true', 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': b.key }
    for (const key of ['backups/2026/12/03/x.cpgbak', 'backups/2026/12/03/x.manifest.json']) {
      const req = { principal: administrator, action: 's3:PutObject', resource: `${b.arn}/${key}`, identity: adminPolicy(), resourcePolicy: b.policy }
      deny(`an administrator writes ${key} in ${suffix} without If-None-Match`, { ...req, context: write })
    }
  }
  deny('the backup function overwrites a backup (no If-None-Match)', { principal: d.functionRole('backup').arn, action: 's3:PutObject', resource: `${backups.arn}/backups/2026/12/03/x.cpgbak`, context: { 'aws:SecureTransport': 'true', 's3:ObjectCreationOperation': 'true', 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': backups.key }, identity: d.functionRole('backup').policies, resourcePolicy: backups.policy })
  deny('the backup function writes an erasure record', { principal: d.functionRole('backup').arn, action: 's3:PutObject', resource: `${backups.arn}/erasures/x.json`, identity: d.functionRole('backup').policies, resourcePolicy: backups.policy })
  deny('retention writes a backup', { principal: d.functionRole('retention').arn, action: 's3:PutObject', resource: `${backups.arn}/backups/2026/12/03/x.cpgbak`, identity: d.functionRole('retention').policies, resourcePolicy: backups.policy })
  // A ledger writer cannot make what unwraps as a backup's data key.
  for (const f of ['api', 'retention']) {
    const r = d.functionRole(f)
    deny(`${f} encrypts with the backups key outside the ledger's context`, { principal: r.arn, action: 'kms:Encrypt', resource: backupsKey.arn, context: { 'kms:CallerAccount': d.account, 'kms:EncryptionContext:purpose': 'copper-gallery-backup', 'kms:EncryptionContextKeys': ['purpose', 'backup_id'] }, identity: r.policies, resourcePolicy: d.keyPolicy(backupsKey) })
  }

  deny('the edge function reads a rendition', { principal: edge.arn, action: 's3:GetObject', resource: `${processed.arn}/renditions/a/b/800.webp`, identity: edge.policies, resourcePolicy: processed.policy })

  // Renditions: only public ones, only through this distribution.
  for (const suffix of ['processed', 'processed-dr']) {
    const b = d.bucket(suffix)
    const object = `${b.arn}/renditions/a/b/800.webp`
    deny(`anyone reads a public rendition from ${suffix} directly`, { principal: `arn:${d.partition}:iam::${OTHER_ACCOUNT}:root`, action: 's3:GetObject', resource: object, context: { 'aws:SecureTransport': 'true', 's3:ExistingObjectTag/gallery-visibility': 'public' }, resourcePolicy: b.policy })
    deny(`CloudFront reads a private rendition from ${suffix}`, { principal: 'cloudfront.amazonaws.com', action: 's3:GetObject', resource: object, context: { 'aws:SecureTransport': 'true', 'aws:SourceArn': d.distributionArn, 'aws:SourceAccount': d.account, 's3:ExistingObjectTag/gallery-visibility': 'private' }, resourcePolicy: b.policy })
    deny(`CloudFront reads an untagged object from ${suffix}`, { principal: 'cloudfront.amazonaws.com', action: 's3:GetObject', resource: object, context: { 'aws:SecureTransport': 'true', 'aws:SourceArn': d.distributionArn, 'aws:SourceAccount': d.account }, resourcePolicy: b.policy })
    deny(`another distribution reads a public rendition from ${suffix}`, { principal: 'cloudfront.amazonaws.com', action: 's3:GetObject', resource: object, context: { 'aws:SecureTransport': 'true', 'aws:SourceArn': `arn:${d.partition}:cloudfront::${OTHER_ACCOUNT}:distribution/EOTHER`, 'aws:SourceAccount': OTHER_ACCOUNT, 's3:ExistingObjectTag/gallery-visibility': 'public' }, resourcePolicy: b.policy })
  }

  // A role of the same name in another account invokes nothing.
  for (const fn of d.functions.values()) {
    const twin = `arn:${d.partition}:iam::${OTHER_ACCOUNT}:role/${d.prefix}-operator`
    deny(`a same-named operator role in another account invokes ${fn.name}`, { principal: twin, action: 'lambda:InvokeFunction', resource: fn.arn, identity: adminPolicy(), resourcePolicy: d.lambdaPolicy(fn) })
  }
  deny('a same-named role in another account assumes the operator role', { principal: `arn:${d.partition}:iam::${OTHER_ACCOUNT}:role/aws-reserved/sso.amazonaws.com/${d.region}/AWSReservedSSO_${d.variables.operator_permission_set}_0123`, action: 'sts:AssumeRole', resource: operator.arn, identity: adminPolicy(), resourcePolicy: { name: 'trust policy of the operator role', policy: operator.trust } })
  deny('an IAM user of the account (not the operator permission set) assumes the operator role', { principal: `arn:${d.partition}:iam::${d.account}:user/alice`, action: 'sts:AssumeRole', resource: operator.arn, context: { 'aws:MultiFactorAuthPresent': 'true' }, identity: adminPolicy(), resourcePolicy: { name: 'trust policy of the operator role', policy: operator.trust } })
  deny('the API role invokes a function (functions never invoke each other)', { principal: d.functionRole('api').arn, action: 'lambda:InvokeFunction', resource: d.fn('backup').arn, identity: d.functionRole('api').policies, resourcePolicy: d.lambdaPolicy(d.fn('backup')) })

  // No administrator grants themselves decryption.
  const admin = `arn:${d.partition}:iam::${d.account}:role/Admin`
  for (const address of ['aws_kms_key.data', 'aws_kms_key.backups', 'aws_kms_key.ops', 'aws_kms_key.dr']) {
    const k = d.key(address)
    deny(`an administrator creates a grant on ${address}`, { principal: admin, action: 'kms:CreateGrant', resource: k.arn, context: { 'kms:GrantIsForAWSResource': 'false', 'kms:GranteePrincipal': admin, 'kms:GrantOperations': ['Decrypt'], 'kms:CallerAccount': d.account }, identity: adminPolicy(), resourcePolicy: d.keyPolicy(k) })
    deny(`an administrator decrypts with ${address} directly`, { principal: admin, action: 'kms:Decrypt', resource: k.arn, context: { 'kms:CallerAccount': d.account }, identity: adminPolicy(), resourcePolicy: d.keyPolicy(k) })
  }
  deny("the API role uses the data key outside S3", { principal: d.functionRole('api').arn, action: 'kms:GenerateDataKey', resource: dataKey.arn, context: { 'kms:CallerAccount': d.account }, identity: d.functionRole('api').policies, resourcePolicy: d.keyPolicy(dataKey) })

  // Retention: the ledger only, never a backup it did not expire.
  const retention = d.functionRole('retention')
  deny('retention writes outside erasures/', { principal: retention.arn, action: 's3:PutObject', resource: `${backups.arn}/backups/2026/12/03/forged.gcb`, context: { 'aws:SecureTransport': 'true', 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': backupsKey.arn }, identity: retention.policies, resourcePolicy: backups.policy })
  deny('retention uses the backups key outside S3', { principal: retention.arn, action: 'kms:GenerateDataKey', resource: backupsKey.arn, context: { 'kms:CallerAccount': d.account }, identity: retention.policies, resourcePolicy: d.keyPolicy(backupsKey) })
  deny('retention reads a backup', { principal: retention.arn, action: 's3:GetObject', resource: `${backups.arn}/backups/2026/12/03/x.gcb`, identity: retention.policies, resourcePolicy: backups.policy })
  deny('retention lists the backups', { principal: retention.arn, action: 's3:ListBucket', resource: backups.arn, context: { 'aws:SecureTransport': 'true', 's3:prefix': 'backups/' }, identity: retention.policies, resourcePolicy: backups.policy })
  // Every write names the bucket's key; asking for another is refused.
  const otherKey = `arn:${d.partition}:kms:${d.region}:${d.account}:key/00000000-0000-0000-0000-000000000000`
  for (const suffix of ['originals', 'processed', 'backups', 'processed-dr', 'backups-dr']) {
    const b = d.bucket(suffix)
    const writer = suffix === 'originals' ? d.functionRole('api') : suffix === 'processed' ? d.functionRole('image_processor') : suffix === 'backups' ? d.functionRole('backup') : d.role(`${d.prefix}-recovery`)
    const resource = `${b.arn}/${suffix.startsWith('processed') ? 'renditions/a/b/800.webp' : suffix === 'originals' ? 'originals/a/b' : 'backups/x.gcb'}`
    deny(`an upload to ${suffix} under another KMS key`, { principal: writer.arn, action: 's3:PutObject', resource, context: { 'aws:SecureTransport': 'true', 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': otherKey }, identity: writer.policies, resourcePolicy: b.policy })
    deny(`an upload to ${suffix} asking for SSE-S3`, { principal: writer.arn, action: 's3:PutObject', resource, context: { 'aws:SecureTransport': 'true', 's3:x-amz-server-side-encryption': 'AES256' }, identity: writer.policies, resourcePolicy: b.policy })
    deny(`a plain-HTTP request to ${suffix}`, { principal: writer.arn, action: 's3:PutObject', resource, context: { 'aws:SecureTransport': 'false', 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': b.key }, identity: writer.policies, resourcePolicy: b.policy })
  }
  const backup = d.functionRole('backup')
  deny('the backup role deletes a backup version', { principal: backup.arn, action: 's3:DeleteObjectVersion', resource: `${backups.arn}/backups/2026/12/03/x.gcb`, identity: backup.policies, resourcePolicy: backups.policy })

  // The VPC's S3 endpoints reach only the gallery's buckets: even a function
  // whose credentials (or policy) were abused cannot copy data elsewhere.
  for (const [region, endpoint] of Object.entries(d.s3Endpoints)) {
    const api = d.functionRole('api')
    deny(`a function writes to a bucket outside the gallery through the S3 endpoint in ${region}`, { principal: api.arn, action: 's3:PutObject', resource: 'arn:aws:s3:::exfiltration-target/x', identity: adminPolicy(), endpoint })
  }

  // The break-glass role reads and delegates decryption; nothing else.
  const drBackups = d.bucket('backups-dr')
  const drKey = d.key('aws_kms_key.dr')
  deny('the recovery role deletes a replica version', { principal: recovery.arn, action: 's3:DeleteObjectVersion', resource: `${drBackups.arn}/backups/x.gcb`, identity: recovery.policies, resourcePolicy: drBackups.policy })
  deny('the recovery role writes a replica', { principal: recovery.arn, action: 's3:PutObject', resource: `${drBackups.arn}/backups/x.gcb`, identity: recovery.policies, resourcePolicy: drBackups.policy })
  deny('the recovery role decrypts with the data key', { principal: recovery.arn, action: 'kms:Decrypt', resource: dataKey.arn, context: ctxS3(d, processed), identity: recovery.policies, resourcePolicy: d.keyPolicy(dataKey) })
  const grant = (grantee, ops) => ({ 'kms:GranteePrincipal': grantee, 'kms:GrantOperations': ops, 'kms:CallerAccount': d.account, 'kms:GrantIsForAWSResource': 'false' })
  const newBackupRole = `arn:${d.partition}:iam::${d.account}:role/${d.prefix}-r1-backup`
  deny('the recovery role grants encryption', { principal: recovery.arn, action: 'kms:CreateGrant', resource: drKey.arn, context: grant(newBackupRole, ['Decrypt', 'Encrypt']), identity: recovery.policies, resourcePolicy: d.keyPolicy(drKey) })
  deny('the recovery role grants decryption to itself', { principal: recovery.arn, action: 'kms:CreateGrant', resource: drKey.arn, context: grant(recovery.arn, ['Decrypt']), identity: recovery.policies, resourcePolicy: d.keyPolicy(drKey) })
  deny('the recovery role grants decryption to a role in another account', { principal: recovery.arn, action: 'kms:CreateGrant', resource: drKey.arn, context: grant(`arn:${d.partition}:iam::${OTHER_ACCOUNT}:role/x-backup`, ['Decrypt']), identity: recovery.policies, resourcePolicy: d.keyPolicy(drKey) })
  return rows
}

/** docs/disaster-recovery.md, "Lost region": every AWS request of the procedure, in order. */
export function recoveryProcedure(d) {
  const rows = []
  const step = (why, req) => rows.push({ why, req: { context: { 'aws:SecureTransport': 'true' }, ...req }, expect: ALLOW })
  const recovery = d.role(`${d.prefix}-recovery`)
  const who = { principal: recovery.arn, identity: recovery.policies }
  const drBackups = d.bucket('backups-dr')
  const drProcessed = d.bucket('processed-dr')
  const drKey = d.key('aws_kms_key.dr')
  const primary = d.key('aws_kms_key.backups')
  const replica = [...d.keys.values()].find((k) => k.address.startsWith('aws_kms_replica_key.backups_dr')) ?? { ...primary, arn: primary.arn.replace(`:${d.region}:`, `:${d.drRegion}:`) }
  step('1. an operator assumes the recovery role', { principal: ssoSession(d), action: 'sts:AssumeRole', resource: recovery.arn, identity: ssoPolicy(d), resourcePolicy: { name: 'trust policy of the recovery role', policy: recovery.trust } })
  step('2. lists the replicated backups', { ...who, action: 's3:ListBucket', resource: drBackups.arn, context: { 'aws:SecureTransport': 'true', 's3:prefix': 'manifests/' }, resourcePolicy: drBackups.policy })
  step('2. reads the newest manifest', { ...who, action: 's3:GetObject', resource: `${drBackups.arn}/manifests/2026/12/03/x.json`, resourcePolicy: drBackups.policy })
  step('2. S3 decrypts it with the DR key', { ...who, action: 'kms:Decrypt', resource: drKey.arn, context: ctxS3(d, drBackups), resourcePolicy: d.keyPolicy(drKey) })
  step('2. reads the erasure ledger replica', { ...who, action: 's3:GetObject', resource: `${drBackups.arn}/erasures/x.json`, resourcePolicy: drBackups.policy })
  step('3. checks the backup key replica', { ...who, action: 'kms:DescribeKey', resource: replica.arn, context: { 'kms:CallerAccount': d.account }, resourcePolicy: d.keyPolicy(replica) })
  step("3. unwraps a backup's data key with the replica", { ...who, action: 'kms:Decrypt', resource: replica.arn, context: { 'kms:CallerAccount': d.account }, resourcePolicy: d.keyPolicy(replica) })
  const newBackupRole = `arn:${d.partition}:iam::${d.account}:role/${d.prefix}-r1-backup`
  const grant = (ops) => ({ 'kms:GranteePrincipal': newBackupRole, 'kms:GrantOperations': ops, 'kms:CallerAccount': d.account, 'kms:GrantIsForAWSResource': 'false' })
  step("4. grants the recovery deployment's backup role Decrypt on the replica", { ...who, action: 'kms:CreateGrant', resource: replica.arn, context: grant(['Decrypt', 'DescribeKey']), resourcePolicy: d.keyPolicy(replica) })
  step("4. grants the recovery deployment's backup role Decrypt on the DR key", { ...who, action: 'kms:CreateGrant', resource: drKey.arn, context: grant(['Decrypt']), resourcePolicy: d.keyPolicy(drKey) })
  step('5. lists the replicated renditions', { ...who, action: 's3:ListBucketVersions', resource: drProcessed.arn, resourcePolicy: drProcessed.policy })
  step('5. reads a rendition and its tags to copy them', { ...who, action: 's3:GetObject', resource: `${drProcessed.arn}/renditions/a/b/800.webp`, resourcePolicy: drProcessed.policy })
  step('5. reads its tags', { ...who, action: 's3:GetObjectTagging', resource: `${drProcessed.arn}/renditions/a/b/800.webp`, resourcePolicy: drProcessed.policy })
  step('5. S3 decrypts the rendition with the DR key', { ...who, action: 'kms:Decrypt', resource: drKey.arn, context: ctxS3(d, drProcessed), resourcePolicy: d.keyPolicy(drKey) })
  return rows
}

/** Terraform gives each function the key its buckets default to (the recording maps writes by bucket). */
export function configuredKeys(d) {
  const problems = []
  const expectKey = (fn, variable, bucket) => {
    const value = d.fn(fn).env[variable]
    if (value && value !== d.bucket(bucket).key) problems.push(`${fn}: ${variable}=${value} but ${bucket} defaults to ${d.bucket(bucket).key}`)
  }
  for (const fn of ['api', 'image_processor', 'retention']) {
    expectKey(fn, 'GALLERY_KMS_KEY_ID', 'processed')
    expectKey(fn, 'GALLERY_KMS_KEY_ID', 'originals')
  }
  for (const fn of ['api', 'backup', 'retention']) expectKey(fn, 'GALLERY_BACKUP_KMS_KEY_ID', 'backups')
  for (const region of [d.region, d.drRegion]) {
    if (!d.s3Endpoints[region]) problems.push(`no S3 endpoint with a policy in ${region}: the functions' S3 requests cannot be evaluated as they travel`)
  }
  return problems
}
