// The names esbuild may shorten in the product bundle (its mangleProps): members our classes
// declare `private`, and nothing else. TypeScript's checker decides: a name is kept whole when it
// is ever used as anything but such a member: a public or protected member, an interface or
// object-literal key, a destructured name, a string, a property of something typed outside
// src/ (Node's, a library's), or a property either bundled library uses. Keys of status JSON,
// CBOR maps and Node objects so stay as written; only what no one outside a class can see
// shrinks. (About a tenth of the bundle: issue 16's size target.)
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** A RegExp matching exactly the private member names that are safe to shorten. */
export function privateNamesPattern(root = process.cwd()) {
  const ts = require('typescript');
  const configPath = path.join(root, 'tsconfig.json');
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, ts.sys.readFile).config, ts.sys, root);
  const program = ts.createProgram(config.fileNames, config.options);
  const checker = program.getTypeChecker();
  const ours = (file) => !file.isDeclarationFile && !file.fileName.includes('node_modules');
  const isPrivateMember = (declaration) =>
    (ts.isClassElement(declaration) || ts.isParameterPropertyDeclaration(declaration, declaration.parent)) &&
    (ts.getCombinedModifierFlags(declaration) & ts.ModifierFlags.Private) !== 0 &&
    ours(declaration.getSourceFile());

  const privateNames = new Set();
  const kept = new Set(['constructor']);
  const keep = (name) => kept.add(name);

  for (const file of program.getSourceFiles().filter(ours)) {
    const visit = (node) => {
      if ((ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node) || ts.isParameter(node)) && node.name && ts.isIdentifier(node.name)) {
        const isMember = !ts.isParameter(node) || ts.isParameterPropertyDeclaration(node, node.parent);
        if (isMember && isPrivateMember(node)) privateNames.add(node.name.text);
        else if (isMember) keep(node.name.text); // public or protected, or an object literal's method
      }
      if (ts.isStringLiteralLike(node)) keep(node.text);
      if (ts.isPropertySignature(node) || ts.isMethodSignature(node) || ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node) || ts.isEnumMember(node)) {
        if (node.name && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name))) keep(node.name.text);
      }
      if (ts.isBindingElement(node)) {
        const name = node.propertyName ?? node.name;
        if (ts.isIdentifier(name)) keep(name.text);
      }
      if (ts.isPropertyAccessExpression(node) || ts.isPropertyAccessChain?.(node)) {
        const symbol = checker.getSymbolAtLocation(node.name);
        const declarations = symbol?.declarations ?? [];
        if (declarations.length === 0 || !declarations.every(isPrivateMember)) keep(node.name.text);
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
  // What the bundled libraries read or write by name, whatever its spelling.
  // (Every runtime dependency is bundled: package.json names them, so a new one is covered too.)
  const dependencies = Object.keys(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).dependencies ?? {});
  for (const library of dependencies) {
    for (const file of javascriptFiles(path.join(root, 'node_modules', library))) {
      for (const match of readFileSync(file, 'utf8').matchAll(/[A-Za-z_$][\w$]*/g)) keep(match[0]);
    }
  }
  const safe = [...privateNames].filter((name) => !kept.has(name)).sort();
  return { pattern: new RegExp(`^(${safe.join('|') || '(?!)'})$`), names: safe };
}

function javascriptFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : javascriptFiles(file);
    return /\.(c|m)?js$/.test(entry.name) ? [file] : [];
  });
}
