// The Herald side of the Prosody interop runs: an in-process test server (bin/testing.ts) whose
// log goes to a file in the run's directory at debug level instead of being silenced, so a failed
// run can be read afterwards. Everything else is the TestServer integration testers use.

import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { TestServer, type TestServerOptions } from '../../../bin/testing.js';
import { createHerald } from '../../../bin/bootstrap.js';
import { createLogger } from '../../../server/log.js';

export class LoggedHerald extends TestServer {
  private logStream: WriteStream | undefined;

  constructor(options: TestServerOptions, readonly logFile: string) {
    super(options);
  }

  override async start(): Promise<this> {
    const config = this.buildConfig();
    this.logStream = createWriteStream(this.logFile, { flags: 'a' });
    const { server } = createHerald(config, { log: createLogger('debug', this.logStream), ephemeralPorts: true });
    this.server = server;
    await server.start();
    return this;
  }

  override async stop(): Promise<void> {
    await super.stop();
    const stream = this.logStream;
    this.logStream = undefined;
    if (stream) {
      stream.end();
      await once(stream, 'finish');
    }
  }
}

export async function startHerald(options: TestServerOptions, logFile: string): Promise<LoggedHerald> {
  const herald = new LoggedHerald(options, logFile);
  await herald.start();
  return herald;
}
