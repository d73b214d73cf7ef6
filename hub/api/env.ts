// What the API's middleware hands the routes: the caller, as auth found it.
import type { Principal } from '../principal.js';

export type HubEnv = { Variables: { principal: Principal } };
