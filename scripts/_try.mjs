import { build } from 'esbuild';
import { baseOptions } from './esbuild-options.mjs';
await build({ ...baseOptions, entryPoints: [process.argv[2]], outfile: '/work/main/.build/out.cjs', nodePaths: ['/work/main/node_modules'] });
