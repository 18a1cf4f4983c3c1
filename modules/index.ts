// The built-in modules, in load order. A module named in `modules_disabled` is skipped.
import type { ModuleDefinition } from '../server/module-api.js';
import disco from './disco.js';
import adhoc from './adhoc.js';
import ping from './ping.js';
import register from './register.js';
import roster from './roster.js';
import presence from './presence/index.js';
import csi from './csi.js';
import carbons from './carbons.js';
import vcard from './vcard.js';
import privateStorage from './private.js';
import blocking from './blocking.js';
import version from './version.js';
import time from './time.js';
import last from './last.js';
import offline from './offline.js';
import muc from './muc/index.js';
import mam from './mam/index.js';
import push from './push/index.js';
import pubsub from './pubsub/index.js';
import pep from './pubsub/pep.js';
import bookmarks from './bookmarks.js';
import avatars from './avatars.js';
import appserver from './appserver/index.js';
import upload from './upload/index.js';
import externalServices from './external-services.js';
import admin from './admin.js';
import contactInfo from './contact-info.js';
import invites from './invites.js';

export const builtinModules: ModuleDefinition<unknown>[] = [
  disco,
  adhoc,
  ping,
  register,
  roster,
  presence,
  csi,
  carbons,
  vcard,
  privateStorage,
  blocking,
  version,
  time,
  last,
  offline,
  muc,
  mam,
  push,
  pubsub,
  pep,
  bookmarks,
  avatars,
  appserver,
  upload,
  externalServices,
  admin,
  contactInfo,
  invites,
];
