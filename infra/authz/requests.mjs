// The requests the test suite made, as the emulator recorded them on the
// wire, turned into what IAM evaluates: principal, action, resource and
// context. Each function's code runs under its own access key in the tests
// (gallery-<function>, see tests/it/support.rs and the runtime tests), which
// names the role Terraform gives that function; requests under any other key
// are the tests' own set-up and inspection, counted but not evaluated.

import { Buffer } from 'node:buffer'

/** Access key → who makes the request in AWS. */
export const PRINCIPALS = {
  'gallery-api': { role: 'api' },
  'gallery-image-processor': { role: 'image_processor' },
  'gallery-backup': { role: 'backup' },
  'gallery-retention': { role: 'retention' },
  'gallery-edge': { role: 'edge' },
  // The local edge server reads renditions as CloudFront's origin access control would.
  'gallery-cloudfront': { service: 'cloudfront.amazonaws.com' },
}

const header = (h, name) => {
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === name) return v
  return undefined
}

function body(entry) {
  if (!entry.body) return Buffer.alloc(0)
  return entry.body_encoded ? Buffer.from(entry.body, 'base64') : Buffer.from(entry.body, 'utf8')
}

/** Form fields of a multipart/form-data body (a browser's presigned POST), without the file. */
function formFields(contentType, raw) {
  const m = /boundary=("?)([^";]+)\1/i.exec(contentType ?? '')
  if (!m) return {}
  const fields = {}
  const text = raw.toString('latin1')
  for (const part of text.split(`--${m[2]}`)) {
    const name = /content-disposition:[^\r\n]*\bname="([^"]+)"/i.exec(part)?.[1]
    if (!name || /filename=/i.test(part.split('\r\n\r\n')[0])) continue
    const value = part.split('\r\n\r\n').slice(1).join('\r\n\r\n').replace(/\r\n$/, '')
    fields[name.toLowerCase()] = value
  }
  return fields
}

function credentialOf(entry, url, fields) {
  const auth = header(entry.headers, 'authorization')
  const scope = auth?.match(/Credential=([^,\s]+)/)?.[1] ?? url.searchParams.get('X-Amz-Credential') ?? fields?.['x-amz-credential']
  if (!scope) return null
  const [accessKey, , region, service] = decodeURIComponent(scope).split('/')
  // A presigned URL or form: a browser sends it, from the internet, not a
  // function through the VPC's endpoints.
  return { accessKey, region, service, browser: !auth }
}

const xmlValues = (xml, tag) => [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1])

/** One recorded S3 call → the IAM actions it needs: [{ action, bucket, key, extra }]. */
function s3Actions(method, url, entry, fields) {
  const path = decodeURIComponent(url.pathname).replace(/^\//, '')
  const [bucket, ...rest] = path.split('/')
  const key = rest.join('/')
  const q = url.searchParams
  const versioned = q.has('versionId')
  const out = []
  const add = (action, k = key, extra = {}) => out.push({ action, bucket, key: k, ...extra })
  if (!key) {
    if (method === 'GET' && q.has('versions')) add('s3:ListBucketVersions', '')
    else if (method === 'GET' && q.has('uploads')) add('s3:ListBucketMultipartUploads', '')
    else if ((method === 'GET' || method === 'HEAD') && [...q.keys()].every((k) => ['list-type', 'prefix', 'delimiter', 'continuation-token', 'max-keys', 'start-after', 'encoding-type', 'fetch-owner'].includes(k))) add('s3:ListBucket', '', { prefix: q.get('prefix') ?? '' })
    else if (method === 'POST' && q.has('delete')) {
      const xml = body(entry).toString('utf8')
      for (const obj of xmlValues(xml, 'Object')) {
        const k = xmlValues(obj, 'Key')[0]
        add(xmlValues(obj, 'VersionId').length ? 's3:DeleteObjectVersion' : 's3:DeleteObject', k)
      }
    } else if (method === 'POST' && fields) add('s3:PutObject', fields.key, { upload: 'presigned POST', creation: true, tagging: fields.tagging, sse: fields['x-amz-server-side-encryption'] })
    else add(`s3:bucket-admin:${method}:${[...q.keys()].join(',')}`, '')
    return out
  }
  if (method === 'GET' || method === 'HEAD') {
    if (q.has('tagging')) add(versioned ? 's3:GetObjectVersionTagging' : 's3:GetObjectTagging')
    else if (q.has('retention')) add('s3:GetObjectRetention')
    else if (q.has('uploadId')) add('s3:ListMultipartUploadParts')
    else add(versioned ? 's3:GetObjectVersion' : 's3:GetObject', key, { read: method === 'GET' })
  } else if (method === 'PUT') {
    if (q.has('tagging')) add(versioned ? 's3:PutObjectVersionTagging' : 's3:PutObjectTagging', key, { tags: body(entry).toString('utf8') })
    else if (q.has('retention')) add('s3:PutObjectRetention')
    else if (q.has('uploadId')) add('s3:PutObject', key, { part: true, creation: false })
    else {
      const copy = header(entry.headers, 'x-amz-copy-source')
      add('s3:PutObject', key, { write: true, creation: true, ifNoneMatch: header(entry.headers, 'if-none-match'), tagging: header(entry.headers, 'x-amz-tagging'), sse: header(entry.headers, 'x-amz-server-side-encryption') })
      if (header(entry.headers, 'x-amz-tagging')) add('s3:PutObjectTagging')
      // A write that sets a lock is also authorized as s3:PutObjectRetention.
      if (header(entry.headers, 'x-amz-object-lock-mode')) add('s3:PutObjectRetention')
      if (copy) {
        const src = new URL(`s3://${decodeURIComponent(copy).replace(/^\//, '')}`)
        out.push({ action: src.searchParams.has('versionId') ? 's3:GetObjectVersion' : 's3:GetObject', bucket: src.host, key: src.pathname.replace(/^\//, ''), read: true })
      }
    }
  } else if (method === 'POST') {
    // S3's s3:ObjectCreationOperation: true for the requests that create the
    // object (PutObject, CompleteMultipartUpload), false for the multipart
    // steps before it, which cannot carry If-None-Match.
    if (q.has('uploads')) add('s3:PutObject', key, { write: true, creation: false, sse: header(entry.headers, 'x-amz-server-side-encryption') })
    else if (q.has('uploadId')) add('s3:PutObject', key, { complete: true, creation: true, ifNoneMatch: header(entry.headers, 'if-none-match') })
    else add(`s3:object-admin:POST:${[...q.keys()].join(',')}`)
  } else if (method === 'DELETE') {
    if (q.has('uploadId')) add('s3:AbortMultipartUpload')
    else if (q.has('tagging')) add(versioned ? 's3:DeleteObjectVersionTagging' : 's3:DeleteObjectTagging')
    else add(versioned ? 's3:DeleteObjectVersion' : 's3:DeleteObject')
  }
  return out
}

/**
 * Reads the recording: returns { calls: [{ who, region, service, action, bucket?, key?, keyId?, secret?, target?, extra }],
 * setup: count of requests under other keys, unsigned: count, tags: the tag history }.
 * Tags are tracked in order across every request (set-up included) so a
 * CloudFront read is evaluated with the tags the object had at that moment.
 */
export function readRecording(lines) {
  const calls = []
  let setup = 0
  let unreadable = 0
  const tags = new Map() // bucket/key -> { tag: value }
  for (const line of lines) {
    if (!line.trim()) continue
    let entry
    try {
      entry = JSON.parse(line)
    } catch {
      unreadable += 1
      continue
    }
    const url = new URL(entry.url)
    const contentType = header(entry.headers, 'content-type')
    const fields = entry.method === 'POST' && /multipart\/form-data/i.test(contentType ?? '') ? formFields(contentType, body(entry)) : null
    const cred = credentialOf(entry, url, fields)
    const target = header(entry.headers, 'x-amz-target')
    const service = cred?.service ?? (target ? target.split('.')[0].toLowerCase() : 's3')
    const isS3 = service === 's3'
    const actions = isS3 ? s3Actions(entry.method, url, entry, fields) : []
    // Tag history, whoever sets it.
    for (const a of actions) {
      const id = `${a.bucket}/${a.key}`
      if (a.action === 's3:PutObject' && a.write) tags.set(id, Object.fromEntries(new URLSearchParams(a.tagging ?? '')))
      if (a.action === 's3:PutObject' && a.upload) tags.set(id, Object.fromEntries(new URLSearchParams(a.tagging ?? '')))
      if (a.action.startsWith('s3:PutObject') && a.action.endsWith('Tagging') && a.tags) {
        const keys = xmlValues(a.tags, 'Key')
        const values = xmlValues(a.tags, 'Value')
        tags.set(id, Object.fromEntries(keys.map((k, i) => [k, values[i]])))
      }
    }
    const who = cred && PRINCIPALS[cred.accessKey]
    if (!who) {
      setup += 1
      continue
    }
    const region = cred.region
    if (isS3) {
      for (const a of actions) {
        // The local edge looks the tag up itself; in AWS, S3 evaluates the
        // bucket policy's tag condition on the GET, which is what is evaluated.
        if (who.service && a.action === 's3:GetObjectTagging') continue
        const objectTags = a.action.startsWith('s3:GetObject') ? { ...(tags.get(`${a.bucket}/${a.key}`) ?? {}) } : undefined
        calls.push({ who, region, service, browser: cred.browser, ...a, objectTags })
      }
      continue
    }
    const json = (() => {
      try {
        return JSON.parse(body(entry).toString('utf8') || '{}')
      } catch {
        return Object.fromEntries(new URLSearchParams(body(entry).toString('utf8')))
      }
    })()
    if (service === 'kms') {
      const op = target.split('.')[1]
      calls.push({ who, region, service, action: `kms:${op}`, keyId: json.KeyId ?? null, encryptionContext: json.EncryptionContext ?? {} })
    } else if (service === 'secretsmanager') {
      calls.push({ who, region, service, action: `secretsmanager:${target.split('.')[1]}`, secret: json.SecretId })
    } else if (service === 'sts') {
      calls.push({ who, region, service, action: `sts:${json.Action ?? target?.split('.')[1] ?? 'unknown'}` })
    } else if (service === 'cloudfront') {
      const id = url.pathname.match(/distribution\/([^/]+)\/invalidation/)?.[1]
      calls.push({ who, region, service, action: entry.method === 'POST' && id ? 'cloudfront:CreateInvalidation' : `cloudfront:${entry.method}`, distribution: id })
    } else if (service === 'sqs') {
      calls.push({ who, region, service, action: `sqs:${target?.split('.')[1] ?? json.Action}`, queue: json.QueueUrl })
    } else {
      calls.push({ who, region, service, action: `${service}:${target ?? entry.method}` })
    }
  }
  return { calls, setup, unreadable }
}
