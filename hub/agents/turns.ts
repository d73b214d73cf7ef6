// One agent's start, stop, snapshot and destroy take turns: each waits for the one
// before it, so two calls for the same agent never interleave (a destroy sent with a
// start runs after it and removes what it started).
export class Turns {
  private readonly byId = new Map<string, { tail: Promise<unknown>; waiting: number }>();

  /** Runs `work` once the earlier work for `id` has ended (at once when none is under way). */
  run<T>(id: string, work: () => Promise<T>): Promise<T> {
    const turn = this.byId.get(id) ?? { tail: Promise.resolve(), waiting: 0 };
    turn.waiting++;
    this.byId.set(id, turn);
    const run = async () => {
      try {
        return await work();
      } finally {
        // Gone before its caller resumes, so the next call finds the agent free and runs at once.
        if (--turn.waiting === 0 && this.byId.get(id) === turn) this.byId.delete(id);
      }
    };
    // Called at once when free, so a start's `starting` is stored before its caller is answered.
    const result = turn.waiting === 1 ? run() : turn.tail.then(run);
    turn.tail = result.catch(() => {});
    return result;
  }
}
