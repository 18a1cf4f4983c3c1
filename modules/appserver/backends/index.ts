// The backend table: every push backend the app server can use, one row each (name = config key
// `modules.appserver.<name>`, config schema, factory; see BackendDefinition in ../backend.ts).
// The app server builds its config schema and the register-push-<name> commands from this list:
// a backend is offered when its config section is present and not `enabled: false`.
//
// Vendor backends: each file in this folder exports its row made with defineBackend(), e.g.
//   export const apns = defineBackend({ name: 'apns', schema: apnsConfig.optional().describe('…'), create });
// and gets one import line below and one entry in BACKENDS (the order is the order in the config
// docs and in the command list).
import type { BackendDefinition } from '../backend.js';
import { sandbox } from './sandbox.js';
// Vendor backend imports go here (apns.ts, fcm.ts, webpush.ts, ubports.ts, wns.ts, unifiedpush.ts).
import { apns } from './apns.js';
import { fcm } from './fcm.js';
import { webpush } from './webpush.js';
import { ubuntu } from './ubports.js';
import { wns } from './wns.js';
import { unifiedpush } from './unifiedpush.js';

export const BACKENDS: readonly BackendDefinition[] = [
  // Vendor backends go here, in this order: apns, fcm, webpush, ubuntu, wns, unifiedpush.
  apns,
  fcm,
  webpush,
  ubuntu,
  wns,
  unifiedpush,
  sandbox,
];
