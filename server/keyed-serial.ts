// Runs asynchronous tasks one after another per key (one account's roster, say) while different
// keys proceed concurrently: the order guarantee per account that RFC 6121 flows need, without a
// global lock.

export interface KeyedSerial {
  <T>(key: string, task: () => Promise<T>): Promise<T>;
  /** Resolves when every queued task has finished. */
  idle(): Promise<void>;
}

export function keyedSerial(): KeyedSerial {
  const tails = new Map<string, Promise<void>>();
  const run = <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const result = (tails.get(key) ?? Promise.resolve()).then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return result;
  };
  return Object.assign(run, { idle: async () => void (await Promise.all(tails.values())) });
}
