#!/usr/bin/env node
// Would AWS allow it? Every AWS request the test suite's functions made
// (recorded on the wire by the emulator), the requests AWS makes on their
// behalf (S3 → KMS, CloudFront → S3, replication, schedules, queues,
// operators), the security promises as requests that must be refused, and the
// lost-region recovery procedure, each evaluated offline against the policies
// of the Terraform plan: identity, bucket, key, queue, topic and Lambda
// resource policies, with AWS's evaluation logic (@cloud-copilot/iam-simulate;
// the emulator itself enforces none of them).
//
//   node evaluate.mjs --plan plan.json [--requests recording.jsonl]
//
// Exits non-zero when a request the gallery makes is denied or a request that
// must be refused is allowed, printing the principal, action, resource,
// context and the statement that decided.

import { readFileSync, existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { simulate } from './simulate.mjs'
import { Deployment } from './plan.mjs'
import { readRecording } from './requests.mjs'
import { impliedRequests, denials, recoveryProcedure, configuredKeys } from './expectations.mjs'
import { mutations } from './mutations.mjs'

const { values: args } = parseArgs({ options: { plan: { type: 'string' }, requests: { type: 'string' }, verbose: { type: 'boolean' }, 'self-test': { type: 'boolean' } } })
if (!args.plan) {
  console.error('usage: evaluate.mjs --plan plan.json [--requests recording.jsonl] [--self-test]')
  process.exit(2)
}
const planJson = readFileSync(args.plan, 'utf8')
let recording = null
if (args.requests && existsSync(args.requests)) {
  recording = readRecording(readFileSync(args.requests, 'utf8').split('\n'))
} else if (args.requests) {
  console.log(`authz: no recording at ${args.requests} (run \`cargo xtask test\` first); evaluating the plan's own rows only`)
}

const { failures, stats } = await evaluate(new Deployment(JSON.parse(planJson)), recording)
console.log(
  `authz: ${stats.evaluated} evaluations, ${stats.distinct} distinct principal/action/resource triples; ` +
    `${stats.recorded} from the suite's recording (${stats.setup} set-up requests not evaluated), ` +
    `${stats.implied} made by AWS on the gallery's behalf, ${stats.denials} that must be refused, ${stats.recovery} recovery steps`,
)
for (const f of failures) report(f)
let selfTestFailed = false
if (args['self-test'] && failures.length === 0) {
  // The harness must notice each defect it was built to catch: plant it back
  // into the plan and expect a failure that names it.
  for (const m of mutations) {
    const d = new Deployment(JSON.parse(planJson))
    m.plant(d)
    const { failures: found } = await evaluate(d, recording)
    const caught = found.some((f) => m.caughtBy.test(`${f.group} ${f.why}`))
    console.log(`authz self-test: ${caught ? 'caught' : 'MISSED'}: ${m.name}`)
    if (!caught) selfTestFailed = true
  }
}
process.exit(failures.length || selfTestFailed ? 1 : 0)

function report(f) {
  console.log(`\nauthz FAILED [${f.group}] ${f.why}`)
  if (f.req) {
    console.log(`  principal: ${f.req.principal}\n  action:    ${f.req.action}\n  resource:  ${f.req.resource}`)
    console.log(`  context:   ${JSON.stringify(f.req.context ?? {})}`)
    console.log(`  policies:  ${[...(f.req.identity ?? []).map((p) => p.name), f.req.resourcePolicy?.name].filter(Boolean).join(', ') || '(none)'}`)
    console.log(`  decision:  ${f.r.decision}: ${f.r.why}`)
  }
}

/** Every row against `d`; returns the failures and counts. */
async function evaluate(d, recording) {
  const failures = []
  const seen = new Map()
  let evaluated = 0
  async function check(group, req, expect) {
    const triple = `${req.principal} ${req.action} ${req.resource}`
    const memo = `${triple} ${JSON.stringify(req.context ?? {})} ${expect}`
    evaluated += 1
    if (seen.has(memo)) return
    const r = await simulate({ account: d.account, ...req })
    const ok = expect === 'Allowed' ? r.decision === 'Allowed' : r.decision === 'ImplicitlyDenied' || r.decision === 'ExplicitlyDenied'
    seen.set(memo, triple)
    if (r.ignored.length) failures.push({ group, req, r, why: `context keys the evaluator ignored: ${r.ignored.join(', ')}` })
    if (!ok) failures.push({ group, req, r, why: `expected ${expect}` })
    else if (args.verbose) console.log(`  ${group}: ${triple} → ${r.decision}`)
  }
  const stats = { recorded: 0, setup: recording?.setup ?? 0 }
  const unmapped = new Set()
  if (recording?.unreadable) failures.push({ group: 'recording', why: `${recording.unreadable} recorded line(s) could not be read` })
  for (const call of recording?.calls ?? []) {
    for (const { req, expect, note } of resolve(d, call)) {
      if (!req) {
        unmapped.add(note)
        continue
      }
      stats.recorded += 1
      await check(`recorded (${note})`, req, expect)
    }
  }
  const groups = { implied: impliedRequests(d), denial: denials(d), recovery: recoveryProcedure(d) }
  for (const [group, rows] of Object.entries(groups)) {
    for (const row of rows) await check(`${group}: ${row.why}`, row.req, row.expect)
  }
  for (const p of configuredKeys(d)) failures.push({ group: 'configuration', why: p })
  for (const u of unmapped) failures.push({ group: 'recording', why: `cannot map to the plan: ${u}` })
  Object.assign(stats, {
    evaluated,
    distinct: new Set(seen.values()).size,
    implied: groups.implied.length,
    denials: groups.denial.length,
    recovery: groups.recovery.length,
  })
  return { failures, stats }
}

// --- mapping a recorded call onto the deployment ----------------------------------

/** A local bucket name → the deployment's bucket of the same role (by suffix). */
function bucketFor(d, name) {
  for (const suffix of ['originals', 'processed-dr', 'backups-dr', 'processed', 'backups', 'trail', 'logs']) {
    if (name === suffix || name.endsWith(`-${suffix}`)) return d.bucket(suffix)
  }
  return null
}

function principalOf(d, who) {
  if (who.service) return { principal: who.service, identity: [] }
  const role = who.role === 'edge' ? d.role(`${d.prefix}-edge`) : d.functionRole(who.role)
  return { principal: role.arn, identity: role.policies }
}

function resolve(d, call) {
  const { principal, identity } = principalOf(d, call.who)
  const who = call.who.role ?? call.who.service
  const base = { 'aws:SecureTransport': 'true' }
  if (call.who.service) Object.assign(base, { 'aws:SourceArn': d.distributionArn, 'aws:SourceAccount': d.account })
  if (call.service === 's3') {
    const bucket = bucketFor(d, call.bucket)
    if (!bucket) return [{ note: `${who} ${call.action} on bucket ${call.bucket}` }]
    if (call.action.startsWith('s3:bucket-admin') || call.action.startsWith('s3:object-admin')) return [{ note: `${who} ${call.action}` }]
    const bucketLevel = ['s3:ListBucket', 's3:ListBucketVersions', 's3:ListBucketMultipartUploads'].includes(call.action)
    const resource = bucketLevel ? bucket.arn : `${bucket.arn}/${call.key}`
    const context = { ...base }
    if (call.action === 's3:ListBucket') context['s3:prefix'] = call.prefix ?? ''
    if (call.action === 's3:PutObject' && (call.write || call.upload)) {
      // The code names its configured key on every write; Terraform configures
      // each function with the key its buckets default to (checked below).
      context['s3:x-amz-server-side-encryption'] = 'aws:kms'
      context['s3:x-amz-server-side-encryption-aws-kms-key-id'] = bucket.key
    }
    if (call.action === 's3:PutObject' && call.creation !== undefined) {
      context['s3:ObjectCreationOperation'] = String(call.creation)
      if (call.ifNoneMatch) context['s3:if-none-match'] = call.ifNoneMatch
    }
    for (const [k, v] of Object.entries(call.objectTags ?? {})) context[`s3:ExistingObjectTag/${k}`] = v
    // CloudFront reads: S3 serves only what the bucket policy's tag rule allows.
    const expect = call.who.service === 'cloudfront.amazonaws.com' && call.objectTags?.['gallery-visibility'] !== 'public' ? 'Denied' : 'Allowed'
    // Functions in the VPC reach S3 through its endpoints, whose policies
    // apply too; the edge function, browsers and CloudFront do not.
    const inVpc = call.who.role && call.who.role !== 'edge' && !call.browser
    const endpoint = inVpc ? d.s3Endpoints[bucket.region] : undefined
    if (inVpc && !endpoint) return [{ note: `${who} reaches S3 in ${bucket.region} through no endpoint` }]
    const out = [{ req: { principal, action: call.action, resource, context, identity, resourcePolicy: bucket.policy, endpoint }, expect, note: `${who} ${call.action}` }]
    // The KMS requests S3 makes as the caller (SSE-KMS with a bucket key: the
    // encryption context is the bucket's ARN).
    const kmsAction = call.write || call.upload ? 'kms:GenerateDataKey' : call.read || call.complete ? 'kms:Decrypt' : null
    if (kmsAction && bucket.key && expect === 'Allowed') {
      const key = d.keyByArn(bucket.key)
      const kctx = { 'kms:ViaService': `s3.${bucket.region}.amazonaws.com`, 'kms:EncryptionContext:aws:s3:arn': bucket.arn, 'kms:CallerAccount': d.account }
      if (call.who.service) Object.assign(kctx, { 'aws:SourceArn': d.distributionArn, 'aws:SourceAccount': d.account })
      out.push({ req: { principal, action: kmsAction, resource: key.arn, context: kctx, identity, resourcePolicy: d.keyPolicy(key) }, expect: 'Allowed', note: `${who} ${kmsAction} through S3` })
    }
    return out
  }
  if (call.service === 'kms') {
    // The functions that call KMS themselves use the backups key Terraform
    // configures (in the DR region, its replica): the backup function for
    // envelope encryption, the API and retention to seal erasure records.
    if (!['backup', 'api', 'retention'].includes(call.who.role)) return [{ note: `${who} calls KMS directly (${call.action})` }]
    const primary = d.keyByArn(d.fn(call.who.role).env.GALLERY_BACKUP_KMS_KEY_ID)
    const inDr = call.region === d.drRegion
    const replica = inDr ? [...d.keys.values()].find((k) => k.address.startsWith('aws_kms_replica_key.backups_dr')) : null
    // Without the replica in the plan (the emulator has none), its ARN in the
    // DR region with the primary's policy, which Terraform gives the replica.
    const key = replica ?? { ...primary, arn: inDr ? primary.arn.replace(`:${d.region}:`, `:${d.drRegion}:`) : primary.arn }
    const context = { 'kms:CallerAccount': d.account }
    for (const [k, v] of Object.entries(call.encryptionContext ?? {})) context[`kms:EncryptionContext:${k}`] = v
    if (Object.keys(call.encryptionContext ?? {}).length) context['kms:EncryptionContextKeys'] = Object.keys(call.encryptionContext)
    return [{ req: { principal, action: call.action, resource: key.arn, context, identity, resourcePolicy: d.keyPolicy(key) }, expect: 'Allowed', note: `${who} ${call.action}` }]
  }
  if (call.service === 'secretsmanager') {
    // Local secrets are named after the variable that points at them.
    const variable = String(call.secret).match(/(DATABASE_[A-Z_]+_SECRET_ARN)(-[A-Za-z0-9]{6})?$/)?.[1]
    const fn = call.who.role && d.fn(call.who.role)
    const arn = variable && fn?.env[variable]
    if (!arn) return [{ note: `${who} reads secret ${call.secret}` }]
    const dataKey = d.key('aws_kms_key.data')
    return [
      { req: { principal, action: call.action, resource: arn, context: base, identity }, expect: 'Allowed', note: `${who} ${call.action}` },
      {
        req: { principal, action: 'kms:Decrypt', resource: dataKey.arn, context: { 'kms:ViaService': `secretsmanager.${d.region}.amazonaws.com`, 'kms:CallerAccount': d.account, 'kms:EncryptionContext:SecretARN': arn }, identity, resourcePolicy: d.keyPolicy(dataKey) },
        expect: 'Allowed',
        note: `${who} kms:Decrypt through Secrets Manager`,
      },
    ]
  }
  if (call.service === 'sts') return [] // GetCallerIdentity needs no permission.
  if (call.service === 'cloudfront') {
    return [{ req: { principal, action: call.action, resource: d.distributionArn, context: base, identity }, expect: 'Allowed', note: `${who} ${call.action}` }]
  }
  return [{ note: `${who} ${call.action}` }]
}
