// Validators compiled once from the JSON Schemas in schemas/. Errors name the JSON
// pointer of the bad value and what was expected, all of them, not only the first.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import agent from '../../schemas/agent.schema.json' with { type: 'json' };
import agentProtocol from '../../schemas/agent-protocol.schema.json' with { type: 'json' };
import jobRequest from '../../schemas/job-request.schema.json' with { type: 'json' };
import profile from '../../schemas/profile.schema.json' with { type: 'json' };
import snapshot from '../../schemas/snapshot.schema.json' with { type: 'json' };
import task from '../../schemas/task.schema.json' with { type: 'json' };
import token from '../../schemas/token.schema.json' with { type: 'json' };
import session from '../../schemas/session.schema.json' with { type: 'json' };
import type { AgentMessage, AgentRequest, JobRequest, Profile, SignInRequest, TokenRequest } from '../../schemas/types.gen.js';
import type { Issue } from './errors.js';
import { userIssues } from '../profiles/user.js';

const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictTuples: false, strictRequired: false });
// tsType tells the type generator to reuse a type declared by another schema.
ajv.addKeyword('tsType');
ajv.addSchema(agentProtocol);
ajv.addSchema(token);
ajv.addSchema(task);
ajv.addSchema(agent);
ajv.addSchema(snapshot);
ajv.addSchema(session);

export function describe(errors: ErrorObject[] | null | undefined, oneOfHint = 'must match exactly one of the allowed shapes'): Issue[] {
  const issues: Issue[] = [];
  for (const e of errors ?? []) {
    // The branches of a oneOf report their own failures; the summary below says it better.
    if (e.schemaPath.startsWith('#/oneOf/') || e.keyword === 'if') continue;
    if (e.keyword === 'additionalProperties') {
      issues.push({ path: `${e.instancePath}/${e.params.additionalProperty}`, message: 'is not a known field' });
    } else if (e.keyword === 'required') {
      issues.push({ path: `${e.instancePath}/${e.params.missingProperty}`, message: 'is required' });
    } else if (e.keyword === 'enum') {
      issues.push({ path: e.instancePath, message: `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` });
    } else if (e.keyword === 'not' && typeof e.parentSchema?.description === 'string') {
      // A `not` says only what is forbidden; its description says why.
      issues.push({ path: e.instancePath, message: e.parentSchema.description });
    } else if (e.keyword === 'oneOf') {
      issues.push({ path: e.instancePath, message: oneOfHint });
    } else {
      issues.push({ path: e.instancePath, message: e.message ?? 'is invalid' });
    }
  }
  return issues;
}

export type Validator<T> = (value: unknown) => { ok: true; value: T } | { ok: false; issues: Issue[] };

function validator<T>(fn: ValidateFunction, oneOfHint?: string): Validator<T> {
  return (value) => (fn(value) ? { ok: true, value: value as T } : { ok: false, issues: describe(fn.errors, oneOfHint) });
}

export const validateJobRequest = validator<JobRequest>(
  ajv.compile(jobRequest),
  'give exactly one of `run` (one script), `steps` (a list) or `task` (a JSON task)',
);
const profileShape = validator<Profile>(ajv.compile(profile));
/** The schema, then what it cannot say: `user` as numbers, and uid 0 in any spelling only when privileged. */
export const validateProfile: Validator<Profile> = (value) => {
  const result = profileShape(value);
  if (!result.ok) {
    // The schema's pattern message says less than parseUser's: use its words for /user.
    const raw = value as { user?: unknown; privileged?: boolean };
    const user = typeof raw?.user === 'string' ? userIssues({ user: raw.user, privileged: raw.privileged === true }) : [];
    return user.length ? { ok: false, issues: [...result.issues.filter((i) => i.path !== '/user'), ...user] } : result;
  }
  const issues = userIssues(result.value);
  return issues.length ? { ok: false, issues } : result;
};
export const validateAgentMessage = validator<AgentMessage>(ajv.getSchema(`${agentProtocol.$id}#/$defs/agentMessage`)!);
export const validateTokenRequest = validator<TokenRequest>(ajv.getSchema(`${token.$id}#/$defs/request`)!);
export const validateAgentRequest = validator<AgentRequest>(ajv.getSchema(`${agent.$id}#/$defs/request`)!);
export const validateSignIn = validator<SignInRequest>(ajv.getSchema(`${session.$id}#/$defs/signIn`)!);
