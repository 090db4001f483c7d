import type { SipService } from '../usages/sip/sip-service.js';
import type { RegistrationPublisher } from '../usages/sip/overlay/registration-publisher.js';
import type { DiskUserSigners, UserCertificateState } from './sip-signers.js';
import type { SipUserStore } from './sip-users.js';

/** One user of this home as `user list --json` shows it. */
export interface HouseholdUser {
  readonly user: string;
  readonly aor: string;
  /** Whether the overlay's authority has certified the user (issued), is still to answer (pending) or said no (refused). */
  readonly certificate: UserCertificateState;
  /** Phones registered now. */
  readonly phones: number;
  /** Whether the overlay holds the user's registration, so other homes can call them. */
  readonly published: boolean;
}

/** The people of this home and, for each, whether the rest of the overlay can reach them. */
export class HouseholdUsers {
  constructor(
    private readonly users: SipUserStore,
    private readonly signers: DiskUserSigners,
    private readonly sip: SipService | undefined,
    private readonly publisher: RegistrationPublisher | undefined,
  ) {}

  list(): HouseholdUser[] {
    return this.users.list().map((user) => {
      const aor = `${user}@${this.users.realm}`;
      const certificate = this.signers.state(user);
      return {
        user,
        aor: `sip:${aor}`,
        certificate,
        phones: this.sip?.location.bindings(aor).length ?? 0,
        // A registration signed under a revoked certificate may still be stored, but no home believes it.
        published: certificate.state !== 'revoked' && (this.publisher?.isPublished(aor) ?? false),
      };
    });
  }
}
