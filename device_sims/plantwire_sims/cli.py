"""`plantwire sim`: run simulated machines, each a real OPC UA server on its own port."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plantwire.runner import run_until_signalled
from plantwire_sims.machine import PROFILES, SimError, SimMachine, run_machines
from plantwire_sims.security import SimSecurity, read_users

HELP = "run simulated OPC UA machines (CNC, pump, energy meter)"
DESCRIPTION = """\
Run simulated plant machines. Each machine is a real OPC UA server on its own port (by default
without security; see --security), with plausible, seeded physics updated at --rate ticks per
second. Values are rounded to each sensor's resolution (e.g. 0.01 m3/h):

  cnc    CNC machining centre: spindle speed/load/setpoint, X/Y/Z axes, spindle temperature,
         part and reject counters, state (RUNNING/IDLE/SETUP/ALARM), active program;
         methods Start, Stop, Reset (clears an alarm),
         LoadProgram(ProgramName: String, Feed: Double) -> CycleTime: Double
  pump   centrifugal pump: flow, discharge pressure, motor current, speed setpoint, vibration,
         bearing wear; methods Start, Stop, Reset (bearing maintenance),
         SetMode(Mode: Int32, 1 run / 0 stop) -> PreviousMode: Int32
  meter  three-phase energy meter: power per phase and total, power factor, kWh register

Machines are named PROFILE-1, PROFILE-2, ... (or --name) on ports PORT, PORT+1, ... with seeds
SEED+1, SEED+2, ...; the same seed always gives the same values. In the address space (namespace
urn:plantwire:sim, index 2) each machine is the object ns=2;s=NAME under Objects; a tag's name is
its browse path below that object, e.g. Spindle/Speed, and its node id is ns=2;s=NAME/Spindle/Speed.
Setpoints are writable; everything else is read-only.

Security: --security POLICY:MODE (repeatable; POLICY Basic256Sha256, Aes128_Sha256_RsaOaep or
Aes256_Sha256_RsaPss, MODE Sign or SignAndEncrypt) adds endpoints; the None endpoint stays unless
--secure-only. Each machine's certificate is DIR/NAME.der (key DIR/NAME.key.pem) in --cert-dir,
made on first start with ApplicationUri urn:plantwire:sim:NAME. With --trusted-certs only client
certificates in that folder may connect securely. With --user or --users-file, only those users
may log in (no anonymous logins). --history SECONDS keeps that much of every variable's values
for HistoryRead.

Once every machine listens, one line per machine goes to stdout: name, profile, endpoint, root node.
Ctrl-C or SIGTERM stops them cleanly.

examples:
  plantwire sim --profile cnc --count 3 --port 4840
  plantwire sim --profile pump --name pump-north --name pump-south --port 4850 --rate 5
  plantwire sim --profile meter --count 10 --port 4900 --tags 500 --rate 10 --record values.jsonl
  plantwire sim --profile cnc --security Basic256Sha256:SignAndEncrypt --secure-only \
      --cert-dir var/sim/pki --trusted-certs var/sim/trusted --user operator:operator.pw --history 600
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default="cnc", help="machine type (default: cnc)"
    )
    parser.add_argument(
        "--count", type=int, default=None, help="number of machines (default: 1, or one per --name)"
    )
    parser.add_argument("--port", type=int, default=4840, help="port of the first machine (default: 4840)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--rate", type=float, default=2.0, help="physics ticks per second (default: 2)")
    parser.add_argument(
        "--tags",
        type=int,
        default=0,
        metavar="N",
        help="extra synthetic analog tags per machine, Extra/T0001...",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="base random seed; machine i uses SEED+i (default: 1)"
    )
    parser.add_argument(
        "--name",
        action="append",
        dest="names",
        metavar="NAME",
        help="machine name instead of PROFILE-i; repeat for several machines",
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="FILE",
        help="append every written value to FILE as JSON lines",
    )
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after SECONDS")
    parser.add_argument(
        "--security",
        action="append",
        default=[],
        metavar="POLICY:MODE",
        help="add an endpoint, e.g. Basic256Sha256:SignAndEncrypt (repeatable; None is the plain one)",
    )
    parser.add_argument("--secure-only", action="store_true", help="offer no endpoint without security")
    parser.add_argument(
        "--cert-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where each machine's certificate and key live (made on first start)",
    )
    parser.add_argument(
        "--trusted-certs",
        type=Path,
        default=None,
        metavar="DIR",
        help="only client certificates in DIR (.der or .pem) may open a secure channel",
    )
    parser.add_argument(
        "--user",
        action="append",
        dest="users",
        default=[],
        metavar="NAME:PASSWORD_FILE",
        help="allow user NAME with the password in PASSWORD_FILE (repeatable); refuses anonymous logins",
    )
    parser.add_argument(
        "--users-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="allow the users in FILE, one NAME:PASSWORD a line (# comments); refuses anonymous logins",
    )
    parser.add_argument(
        "--history",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep each variable's values of the last SECONDS for HistoryRead (default: 0, off)",
    )


def validate(args: argparse.Namespace) -> str | None:
    """The first problem with the arguments, as a message for the user, or None."""
    names = args.names or None
    count = args.count if args.count is not None else (len(names) if names else 1)
    if count < 1:
        return f"--count must be at least 1 (got {count})"
    if names is not None and len(names) != count:
        return f"--count {count} does not match the {len(names)} --name given"
    if not 1 <= args.port <= 65535 or args.port + count - 1 > 65535:
        return f"--port {args.port} with {count} machine(s) needs ports within 1-65535"
    if not args.rate > 0:
        return f"--rate must be above 0 (got {args.rate})"
    if args.tags < 0:
        return f"--tags must be 0 or more (got {args.tags})"
    if args.duration is not None and not args.duration > 0:
        return f"--duration must be above 0 (got {args.duration})"
    if not args.history >= 0:
        return f"--history must be 0 (off) or more seconds (got {args.history})"
    if args.trusted_certs is not None and not args.trusted_certs.is_dir():
        return f"--trusted-certs {args.trusted_certs} is not a folder"
    args.count = count
    return None


def run(args: argparse.Namespace) -> int:
    problem = validate(args)
    if problem is None:
        try:
            security = SimSecurity(
                tuple(args.security),
                args.secure_only,
                args.cert_dir,
                args.trusted_certs,
                read_users(args.users, args.users_file),
            )
        except SimError as err:
            problem = str(err)
    if problem is not None:
        print(f"plantwire sim: {problem}", file=sys.stderr)
        return 2

    def announce(machines: list[SimMachine]) -> None:
        width = max(len(m.name) for m in machines)
        for m in machines:
            print(f"{m.name:<{width}}  {m.profile:<5}  {m.endpoint}  root {m.root_node_id}", flush=True)

    async def main() -> None:
        await run_machines(
            args.profile,
            args.count,
            args.port,
            args.host,
            args.rate,
            args.seed,
            args.tags,
            args.record,
            args.names,
            args.duration,
            on_ready=announce,
            security=security,
            history_s=args.history,
        )

    try:
        run_until_signalled(main)
    except SimError as err:
        print(f"plantwire sim: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run without the `plantwire` entry point: ``python -m plantwire_sims.cli ...``."""
    from plantwire.logs import configure_logging

    parser = argparse.ArgumentParser(
        prog="plantwire sim", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-level", default=None, help="debug, info, warning or error (default: info)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
