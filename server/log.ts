// Structured logs (pino): one JSON line per event, constant messages, data in fields (STYLE.md §8).
import { pino, type Logger as PinoLogger, type Level } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = Level | 'silent';

export function createLogger(level: LogLevel = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: undefined, // no pid/hostname noise: one process, one host
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything (tests, tools). */
export const silentLogger: Logger = pino({ level: 'silent' });
