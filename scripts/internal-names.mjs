// The names esbuild may shorten in the product bundle (its mangleProps): members of our own types
// whose names nothing outside the program reads or writes. TypeScript's checker decides. A name may
// shrink when every declaration of it is a member of a class or interface in src/ (a method, an
// accessor or a data property), unless a type from outside src/ that the class extends or
// implements has it too. It stays whole when it is ever used as anything else:
// - an object-literal key of a property that is not such a member, a destructured name of one,
//   or an access to something typed outside src/ (Node's, a library's);
// - a string (`x['name']`, `'name' in x`), an enum member, an identifier of a bundled library,
//   a name the runtime calls by itself (then, toJSON, next, ...);
// - a data property that leaves the program or enters it by name: JSON, CBOR, files, logs and
//   Node's options (scripts/escaping-names.mjs follows the types to find them);
// - a word in backticks in README.md or docs/: what the docs promise (status --json fields,
//   control requests) stays as written even if the types ever lost track of it.
// Keys of status JSON, CBOR maps, files on disk and Node objects so stay as written, and no build's
// renaming can reach the wire or the disk. (Issue 16's size target.)
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { escapingNames } from './escaping-names.mjs';

const require = createRequire(import.meta.url);

// Called by the language or the runtime without any property access in our code.
const CALLED_BY_THE_RUNTIME = ['constructor', 'prototype', 'then', 'catch', 'finally', 'toJSON', 'toString', 'valueOf', 'next', 'return', 'throw', 'name', 'message', 'stack', 'cause', 'code', 'length'];

/** A RegExp matching exactly the member names that are safe to shorten. */
export function internalNamesPattern(root = process.cwd()) {
  const ts = require('typescript');
  const configPath = path.join(root, 'tsconfig.json');
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, ts.sys.readFile).config, ts.sys, root);
  const program = ts.createProgram(config.fileNames, config.options);
  const checker = program.getTypeChecker();
  const ourFile = (file) => !file.isDeclarationFile && file.fileName.startsWith(path.join(root, 'src') + path.sep);
  const ours = (node) => ourFile(node.getSourceFile());
  const inheritedFromOutside = (classNode, name) =>
    (classNode.heritageClauses ?? []).some((clause) =>
      clause.types.some((heritage) => {
        const property = checker.getPropertyOfType(checker.getTypeAtLocation(heritage), name);
        return property?.declarations?.some((declaration) => !ours(declaration) || (ts.isClassLike(declaration.parent) && inheritedFromOutside(declaration.parent, name)));
      }),
    );
  const isMember = (node) =>
    ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node) ||
    ts.isPropertySignature(node) || ts.isMethodSignature(node) || ts.isParameterPropertyDeclaration(node, node.parent);
  const isInternal = (declaration) =>
    ours(declaration) && isMember(declaration) && !ts.isObjectLiteralExpression(declaration.parent) &&
    !(ts.isClassLike(declaration.parent) && inheritedFromOutside(declaration.parent, declaration.name.getText()));
  const OUR_OWN = { declarations: [] };
  const allInternal = (symbol) => symbol === OUR_OWN || ((symbol?.declarations?.length ?? 0) > 0 && symbol.declarations.every(isInternal));

  const files = program.getSourceFiles().filter(ourFile);
  const internal = new Set();
  const kept = new Set([...CALLED_BY_THE_RUNTIME, ...escapingNames(ts, checker, files, ourFile)]);
  const keep = (name) => kept.add(name);
  // An object literal's key is the property its contextual type declares: in a union (a tagged
  // one, say), the property of every member that has it. A literal with no contextual type (a
  // const's initializer, an inferred return) declares its own keys, and they are ours to shorten:
  // wherever its value goes out by name, escaping-names.mjs follows its type and keeps them.
  const keyOfLiteral = (node) => {
    const type = checker.getContextualType(node.parent);
    if (type === undefined) return OUR_OWN;
    if (!type.isUnion()) return checker.getPropertyOfType(type, node.name.text);
    // A member that is a dictionary or a bare object could take the key by name: it stays.
    if (type.types.some((member) => checker.getIndexInfosOfType(member).length > 0 || (member.flags & ts.TypeFlags.NonPrimitive) !== 0)) return undefined;
    const declarations = type.types.flatMap((member) => checker.getPropertyOfType(member, node.name.text)?.declarations ?? []);
    return declarations.length > 0 ? { declarations } : undefined;
  };
  // A destructured name is the property of the destructured value's type.
  const propertyOfBinding = (node, name) => {
    const type = checker.getTypeAtLocation(node.parent);
    return type && checker.getPropertyOfType(type, name);
  };

  for (const file of files) {
    const visit = (node) => {
      const named = node.name && ts.isIdentifier(node.name);
      if (named && isMember(node)) {
        if (ts.isObjectLiteralExpression(node.parent)) {
          if (!allInternal(keyOfLiteral(node))) keep(node.name.text);
        } else if (isInternal(node)) internal.add(node.name.text);
        else keep(node.name.text);
      }
      if (named && (ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node)) && !allInternal(keyOfLiteral(node))) keep(node.name.text);
      if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) keep(node.text);
      if (ts.isEnumMember(node) && node.name && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name))) keep(node.name.text);
      if (ts.isBindingElement(node) && ts.isObjectBindingPattern(node.parent)) {
        const name = node.propertyName ?? node.name;
        if (ts.isIdentifier(name) && !allInternal(propertyOfBinding(node, name.text))) keep(name.text);
      }
      if (ts.isPropertyAccessExpression(node) && !allInternal(checker.getSymbolAtLocation(node.name))) keep(node.name.text);
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
  // What the docs name in backticks.
  const docs = readdirSync(path.join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => path.join(root, 'docs', name));
  for (const file of [path.join(root, 'README.md'), ...docs]) for (const name of documentedNames(readFileSync(file, 'utf8'))) keep(name);
  // What the bundled libraries read or write by name, whatever its spelling.
  // (Every runtime dependency is bundled: package.json names them, so a new one is covered too.)
  const dependencies = Object.keys(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).dependencies ?? {});
  for (const library of dependencies) {
    for (const file of javascriptFiles(path.join(root, 'node_modules', library))) {
      for (const match of readFileSync(file, 'utf8').matchAll(/[A-Za-z_$][\w$]*/g)) keep(match[0]);
    }
  }
  const safe = [...internal].filter((name) => !kept.has(name)).sort();
  return { pattern: new RegExp(`^(${safe.join('|') || '(?!)'})$`), names: safe };
}

/**
 * The names a Markdown text shows as code: each code span of a line (a table's cells are paired
 * on their own, so prose between two spans is not taken for one) and the dotted names in it
 * (`nat.relay.permissions`). A command line, a --flag, a hyphenated word or a file path names no
 * member: `--media-anchor` kept `anchor`, a test's path kept `trust`.
 */
function documentedNames(markdown) {
  const names = [];
  for (const line of markdown.split('\n')) {
    for (const span of line.matchAll(/(`+)(.+?)\1(?!`)/g)) {
      const code = span[2].trim();
      if (/^(p2psip|node|npm|npx|sudo|systemctl|opkg|dpkg|apt(-get)?)\s/.test(code)) continue;
      for (const dotted of code.matchAll(/(?<![-\w$./])[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*(?![-\w$/]|\.\w)/g)) {
        if (/\.(ts|js|mjs|cjs|md|json|cddl|sh|cbor)$/.test(dotted[0])) continue;
        names.push(...dotted[0].split('.'));
      }
    }
  }
  return names;
}

function javascriptFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : javascriptFiles(file);
    return /\.(c|m)?js$/.test(entry.name) ? [file] : [];
  });
}
