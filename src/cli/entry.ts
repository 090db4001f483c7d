import { main } from './main.js';

// The bundle's entry point: run, then exit with the command's status.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`p2psip: unexpected ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
