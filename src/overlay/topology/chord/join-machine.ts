/*
 * The join state machine of CHORD-RELOAD (RFC 6940 s10.6), with its transitions spelt out so
 * that an impossible one is a bug that throws rather than a silent muddle.
 *
 *   idle -> seeking (Attach to our own ID) -> joining (Join to the admitting peer) -> joined
 *   joined -> joining (alone after every neighbour failed, it found the ring again and merges)
 *   joined -> seeking (kept for a node that must not serve alone), any -> left
 */
export type JoinState = 'idle' | 'seeking' | 'joining' | 'joined' | 'left';

const ALLOWED: Record<JoinState, readonly JoinState[]> = {
  idle: ['seeking', 'joined', 'left'],
  seeking: ['joining', 'left'],
  joining: ['joined', 'seeking', 'left'],
  joined: ['joining', 'seeking', 'left'],
  left: [],
};

export class JoinTransitionError extends Error {
  override readonly name = 'JoinTransitionError';
}

export class JoinMachine {
  state: JoinState = 'idle';

  transition(to: JoinState): void {
    if (!ALLOWED[this.state].includes(to)) throw new JoinTransitionError(`join: ${this.state} -> ${to} is not allowed`);
    this.state = to;
  }
}
