'use strict';
// The common alternative to the Rust API function, for the cold-start benchmark:
// Express + pg + AWS SDK v3, wrapped by serverless-http. It does at cold start
// what the Rust API does (SDK clients, the database password, a lazy pool) and
// serves the public reads the same way, so the two are compared like for like.
//
// The loop below stands in for the Node managed runtime's interface client, so
// the peer runs on a provided (OS-only) runtime exactly as the Rust binary does,
// with nothing native to build.

const http = require('node:http');

const RUNTIME_API = process.env.AWS_LAMBDA_RUNTIME_API;
const API_VERSION = '2018-06-01';
// One keep-alive connection to the Runtime API, reused for every call; no
// timeout, since /next blocks for as long as the function sits idle.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, path, body, headers = {}) {
  const [host, port] = RUNTIME_API.split(':');
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host,
        port: port || 80,
        method,
        path: `/${API_VERSION}${path}`,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length, ...headers } : headers,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function errorBody(err) {
  return { errorType: (err && err.name) || 'Error', errorMessage: (err && err.message) || String(err) };
}

const UNHANDLED = { 'Lambda-Runtime-Function-Error-Type': 'Unhandled' };

// RFC 9457 problem bodies, as the Rust API answers its failures.
function problem(res, status, slug, title, detail, errors) {
  const body = { type: `https://copper-gallery.example/problems/${slug}`, title, status, detail, instance: res.req.path };
  const id = res.req.get('x-request-id');
  if (id) body.request_id = id;
  if (errors) body.errors = errors;
  res.status(status).type('application/problem+json').send(JSON.stringify(body));
}

// A published-artworks page as the API first served it (`shared::db::gallery_page` now adds the image and price).
const PUBLISHED_ARTWORKS = `SELECT a.id, a.artist_id, ar.name AS artist_name, a.title, a.slug, a.description, a.medium,
  a.year, a.width_mm, a.height_mm, a.status, a.created_at, a.updated_at
  FROM artworks a JOIN artists ar ON ar.id = a.artist_id
  WHERE a.status = 'published' AND a.deleted_at IS NULL AND ($1::timestamptz IS NULL OR a.created_at < $1)
  ORDER BY a.created_at DESC LIMIT $2`;

async function init() {
  // Loaded here rather than at the top so that a failure to load is reported
  // through /init/error too; the cost still falls inside the cold start.
  const fs = require('node:fs');
  const express = require('express');
  const serverless = require('serverless-http');
  const { Pool } = require('pg');
  const { S3Client } = require('@aws-sdk/client-s3');
  const { SecretsManagerClient, GetSecretValueCommand } = require('@aws-sdk/client-secrets-manager');

  const env = process.env;
  const required = (name) => {
    if (!env[name]) throw new Error(`${name} is required`);
    return env[name];
  };
  const endpoint = env.AWS_ENDPOINT_URL || undefined;
  const aws = { region: env.AWS_REGION, endpoint };
  // Both clients exist from cold start, as in the Rust API (S3 signs uploads there).
  const s3 = new S3Client({ ...aws, forcePathStyle: Boolean(endpoint) });
  const secrets = new SecretsManagerClient(aws);

  let password = env.DATABASE_PASSWORD;
  if (!password) {
    const arn = required('DATABASE_PASSWORD_SECRET_ARN');
    const out = await secrets.send(new GetSecretValueCommand({ SecretId: arn }));
    password = JSON.parse(out.SecretString || '{}').password;
    if (typeof password !== 'string') throw new Error(`secret ${arn} has no JSON \`password\` field`);
  }

  const statementTimeout = Number(env.DATABASE_STATEMENT_TIMEOUT_MS || 10000);
  // Connects on the first query, like the Rust pool. TLS with full certificate
  // and host-name verification against the bundle; there is no plain-text mode.
  const pool = new Pool({
    host: required('DATABASE_HOST'),
    port: Number(env.DATABASE_PORT || 5432),
    database: required('DATABASE_NAME'),
    user: required('DATABASE_USER'),
    password,
    max: Number(env.DATABASE_POOL_SIZE || 2),
    connectionTimeoutMillis: Number(env.DATABASE_CONNECT_TIMEOUT_MS || 5000),
    statement_timeout: statementTimeout,
    idle_in_transaction_session_timeout: statementTimeout * 3,
    ssl: { ca: fs.readFileSync(required('DATABASE_CA_BUNDLE')), rejectUnauthorized: true },
  });
  // An idle client dropped by the server must not crash the process.
  pool.on('error', (err) => console.error(JSON.stringify({ level: 'ERROR', message: 'idle database client failed', error: err.message })));

  const app = express();
  app.disable('x-powered-by');

  // A liveness answer only: the benchmark measures the runtime, not the database.
  app.get('/health', (req, res) => res.json({ status: 'ok' }));

  // GET /v1/artworks?limit= as the gallery's public list answers it.
  app.get('/v1/artworks', async (req, res) => {
    const limit = req.query.limit === undefined ? 24 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      return problem(res, 422, 'invalid', 'Unprocessable Entity', 'the request is invalid', [
        { field: 'limit', message: 'must be between 1 and 100' },
      ]);
    }
    const before = req.query.before === undefined ? null : new Date(req.query.before);
    if (before !== null && Number.isNaN(before.getTime())) {
      return problem(res, 422, 'invalid', 'Unprocessable Entity', 'the request is invalid', [
        { field: 'query', message: 'before must be an RFC 3339 timestamp' },
      ]);
    }
    let rows;
    try {
      ({ rows } = await pool.query(PUBLISHED_ARTWORKS, [before, limit]));
    } catch (err) {
      console.error(JSON.stringify({ level: 'ERROR', message: 'request failed', error: err.message }));
      return problem(res, 503, 'unavailable', 'Service Unavailable', 'the service is temporarily unavailable');
    }
    const nextBefore = rows.length === limit ? rows[rows.length - 1].created_at : null;
    res.json({ artworks: rows, next_before: nextBefore });
  });

  app.use((req, res) => problem(res, 404, 'not-found', 'Not Found', 'not found'));

  return { handler: serverless(app), s3, secrets, pool };
}

// The context object a Node handler would get from the managed runtime.
function contextFrom(headers, requestId) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return {
    awsRequestId: requestId,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => deadline - Date.now(),
    callbackWaitsForEmptyEventLoop: false,
  };
}

async function main() {
  if (!RUNTIME_API) {
    console.error('AWS_LAMBDA_RUNTIME_API is not set: this runs under the Lambda Runtime API');
    process.exit(1);
  }

  let handler;
  try {
    ({ handler } = await init());
  } catch (err) {
    console.error(JSON.stringify({ level: 'ERROR', message: 'cold start failed', error: err.message }));
    try {
      await call('POST', '/runtime/init/error', errorBody(err), UNHANDLED);
    } finally {
      process.exit(1);
    }
  }

  for (;;) {
    const next = await call('GET', '/runtime/invocation/next');
    if (next.status !== 200) throw new Error(`runtime API /next answered ${next.status}: ${next.body}`);
    const id = next.headers['lambda-runtime-aws-request-id'];
    if (next.headers['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = next.headers['lambda-runtime-trace-id'];
    let result;
    try {
      result = await handler(JSON.parse(next.body), contextFrom(next.headers, id));
    } catch (err) {
      console.error(JSON.stringify({ level: 'ERROR', message: 'invocation failed', requestId: id, error: err.message }));
      await call('POST', `/runtime/invocation/${id}/error`, errorBody(err), UNHANDLED);
      continue;
    }
    await call('POST', `/runtime/invocation/${id}/response`, result);
  }
}

main().catch((err) => {
  // The Runtime API itself failed: nothing left to report to, so let Lambda restart us.
  console.error(JSON.stringify({ level: 'ERROR', message: 'runtime loop failed', error: err.message }));
  process.exit(1);
});
