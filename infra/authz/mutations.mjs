// The defects this harness was built to catch, planted back into a good plan
// (`evaluate.mjs --self-test`): each must make the evaluation fail, naming
// the request it denies or allows. A harness that passes a broken plan tests
// nothing.

const statements = (policy) => (Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement])
const dropSid = (policy, sid) => {
  policy.Statement = statements(policy).filter((s) => s.Sid !== sid)
}
const keyAt = (d, address) => [...d.keys.values()].find((k) => k.address === address)

export const mutations = [
  {
    name: "the backups key names only the backup role and replication (retention's erasure ledger write is refused)",
    plant: (d) => dropSid(keyAt(d, 'aws_kms_key.backups').policy, 'RetentionWritesErasureLedger'),
    caughtBy: /retention kms:GenerateDataKey through S3/,
  },
  {
    name: 'the DR key names only replication and CloudFront (no recovery role can decrypt a replica)',
    plant: (d) => {
      for (const sid of ['RecoveryReadsReplicas', 'RecoveryDelegatesToRecoveryBackupRole']) dropSid(keyAt(d, 'aws_kms_key.dr').policy, sid)
    },
    caughtBy: /recovery: .*DR key/,
  },
  {
    name: 'the operator role requires aws:MultiFactorAuthPresent (Identity Center sessions never carry it)',
    plant: (d) => {
      const role = d.roles.get(`${d.prefix}-operator`)
      role.trust.Statement = [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${d.account}:root` }, Action: 'sts:AssumeRole', Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' } } }]
    },
    caughtBy: /an operator assumes the operator role/,
  },
  {
    name: "the account root's kms:CreateGrant without kms:GrantIsForAWSResource",
    plant: (d) => {
      const p = keyAt(d, 'aws_kms_key.data').policy
      for (const s of statements(p)) if (s.Sid === 'GrantsOnlyForAwsServices') delete s.Condition
    },
    caughtBy: /an administrator creates a grant on aws_kms_key\.data/,
  },
  {
    name: "the API role's data-key use without kms:ViaService",
    plant: (d) => {
      const p = keyAt(d, 'aws_kms_key.data').policy
      for (const s of statements(p)) if (s.Sid === 'ApiPresignedUploadsToOriginals') delete s.Condition
      for (const doc of d.roles.get(`${d.prefix}-api`).policies) {
        for (const s of statements(doc.policy)) if (s.Sid === 'EncryptOriginalUploads') delete s.Condition
      }
    },
    caughtBy: /the API role uses the data key outside S3/,
  },
  {
    name: 'the ops key without kms:Decrypt for CloudTrail (delivery into a bucket-key bucket)',
    plant: (d) => dropSid(keyAt(d, 'aws_kms_key.ops').policy, 'CloudTrailDeliversToBucketKeyBucket'),
    caughtBy: /CloudTrail writes to a bucket-key bucket/,
  },
  {
    name: 'bucket policies that refuse uploads without an encryption header (...IfExists: multipart parts and access logs carry none)',
    plant: (d) => {
      for (const b of d.buckets.values()) {
        for (const s of statements(b.policy?.policy ?? { Statement: [] })) {
          if (!String(s.Sid).startsWith('DenyUploadsWith')) continue
          const [key, values] = Object.entries(s.Condition.StringNotEquals)[0]
          s.Condition = { StringNotEqualsIfExists: { [key]: values } }
        }
      }
    },
    caughtBy: /backup s3:PutObject|S3 delivers a server access log/,
  },
  {
    name: "the gateway endpoint's policy names the account root (on a gateway endpoint: the root user only)",
    plant: (d) => {
      for (const s of statements(d.s3Endpoints[d.region].policy)) {
        s.Principal = { AWS: `arn:aws:iam::${d.account}:root` }
        delete s.Condition
      }
    },
    caughtBy: /recorded \((api|image_processor|backup|retention) s3:/,
  },
  {
    name: 'backups may be overwritten (no bucket policy refuses a write without If-None-Match)',
    plant: (d) => {
      for (const b of d.buckets.values()) if (b.policy?.policy) dropSid(b.policy.policy, 'DenyBackupOverwrites')
    },
    caughtBy: /without If-None-Match/,
  },
  {
    // CreateMultipartUpload and UploadPart cannot carry the header.
    name: 'the written-once rule without s3:ObjectCreationOperation (every multipart backup refused)',
    plant: (d) => {
      for (const b of d.buckets.values()) {
        for (const s of statements(b.policy?.policy ?? { Statement: [] })) if (s.Sid === 'DenyBackupOverwrites') delete s.Condition.Bool
      }
    },
    caughtBy: /backup s3:PutObject/,
  },
  {
    // The key policy names the ledger's writers itself (KMS needs no IAM
    // grant then): without its statement, the API's seal is refused.
    name: 'the backups key does not let the ledger writers seal records',
    plant: (d) => dropSid(keyAt(d, 'aws_kms_key.backups').policy, 'WritersSealErasureRecords'),
    caughtBy: /recorded \(api kms:Encrypt\)/,
  },
  {
    name: 'the API may not lock the erasure record it writes (no s3:PutObjectRetention)',
    plant: (d) => {
      for (const doc of d.roles.get(`${d.prefix}-api`).policies) {
        for (const s of statements(doc.policy)) if (s.Sid === 'WriteErasureRequests') s.Action = ['s3:PutObject']
      }
    },
    caughtBy: /recorded \(api s3:PutObjectRetention\)/,
  },
]
