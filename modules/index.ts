// The built-in modules, in load order. A module named in `modules_disabled` is skipped.
import type { ModuleDefinition } from '../server/module-api.js';
import ping from './ping.js';

export const builtinModules: ModuleDefinition<unknown>[] = [ping];
