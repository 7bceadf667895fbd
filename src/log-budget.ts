/**
 * At most `perWindow` lines of one kind per window: a line per bad packet would let any client
 * that can send packets fill the disk (a flood of forged TSIG, say). What is held back is counted
 * and said in the next line let through. Pure: the clock comes in as `nowMs`.
 */
export class LogBudget {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;
  private held = 0;

  constructor(
    private readonly perWindow: number,
    private readonly windowMs = 1000,
  ) {}

  /**
   * Whether a line may be written now; when it may, `suppressed` is how many were held back
   * since the last line written (0 otherwise).
   */
  take(nowMs: number): { allowed: boolean; suppressed: number } {
    if (nowMs - this.windowStart >= this.windowMs) {
      this.windowStart = nowMs;
      this.used = 0;
    }
    if (this.used >= this.perWindow) {
      this.held++;
      return { allowed: false, suppressed: 0 };
    }
    this.used++;
    const suppressed = this.held;
    this.held = 0;
    return { allowed: true, suppressed };
  }
}
