// The names esbuild may shorten in the product bundle (its mangleProps): members that nothing
// outside the program can see by name. TypeScript's checker decides. A name may shrink when every
// declaration of it is one of:
// - a member a class declares `private`;
// - a method or accessor of a class (on the prototype: JSON, spread and Object.keys never see it),
//   unless a type from outside src/ that the class extends or implements has it too;
// - a method of an interface, or a property whose type is only a function (JSON drops functions,
//   and no CBOR map or status field holds one).
// It stays whole when it is ever used as anything else: a data property of an interface or
// class, an object-literal key whose property is not one of the above, a destructured name, an
// enum member, a string, a property of something typed outside src/ (Node's, a library's), any
// identifier of a bundled library, or a name the runtime calls by itself (then, toJSON, next, ...).
// Keys of status JSON, CBOR maps, files on disk and Node objects so stay as written, and no
// build's renaming can reach the wire or the disk. (Issue 16's size target.)
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

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
  const ours = (node) => {
    const file = node.getSourceFile();
    return !file.isDeclarationFile && !file.fileName.includes('node_modules');
  };
  const isPrivate = (declaration) =>
    (ts.isClassElement(declaration) || ts.isParameterPropertyDeclaration(declaration, declaration.parent)) &&
    (ts.getCombinedModifierFlags(declaration) & ts.ModifierFlags.Private) !== 0;
  const isClassMethod = (declaration) =>
    (ts.isMethodDeclaration(declaration) || ts.isGetAccessorDeclaration(declaration) || ts.isSetAccessorDeclaration(declaration)) &&
    ts.isClassLike(declaration.parent) &&
    !inheritedFromOutside(declaration.parent, declaration.name.getText());
  const isFunctionProperty = (declaration) =>
    (ts.isMethodSignature(declaration) && ts.isInterfaceDeclaration(declaration.parent)) ||
    ((ts.isPropertySignature(declaration) || ts.isPropertyDeclaration(declaration) || ts.isParameterPropertyDeclaration(declaration, declaration.parent)) &&
      onlyFunctions(checker.getTypeAtLocation(declaration)));
  const onlyFunctions = (type) => {
    const present = checker.getNonNullableType(type);
    if (present.isUnion()) return present.types.every((member) => member.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null) || onlyFunctions(member));
    return present.getCallSignatures().length > 0;
  };
  const inheritedFromOutside = (classNode, name) =>
    (classNode.heritageClauses ?? []).some((clause) =>
      clause.types.some((heritage) => {
        const property = checker.getPropertyOfType(checker.getTypeAtLocation(heritage), name);
        return property?.declarations?.some((declaration) => !ours(declaration) || (ts.isClassLike(declaration.parent) && inheritedFromOutside(declaration.parent, name)));
      }),
    );
  const isInternal = (declaration) => ours(declaration) && (isPrivate(declaration) || isClassMethod(declaration) || isFunctionProperty(declaration));
  const allInternal = (symbol) => (symbol?.declarations?.length ?? 0) > 0 && symbol.declarations.every(isInternal);

  const internal = new Set();
  const kept = new Set(CALLED_BY_THE_RUNTIME);
  const keep = (name) => kept.add(name);
  // An object literal's key is the property its contextual type declares.
  const keyOfLiteral = (node) => {
    const type = checker.getContextualType(node.parent);
    return type && checker.getPropertyOfType(type, node.name.text);
  };

  for (const file of program.getSourceFiles().filter((file) => ours(file))) {
    const visit = (node) => {
      const named = node.name && ts.isIdentifier(node.name);
      if (named && (ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node) || ts.isPropertySignature(node) || ts.isMethodSignature(node) || ts.isParameterPropertyDeclaration(node, node.parent))) {
        if (ts.isObjectLiteralExpression(node.parent)) {
          if (!allInternal(keyOfLiteral(node))) keep(node.name.text);
        } else if (isInternal(node)) internal.add(node.name.text);
        else keep(node.name.text);
      }
      if (named && (ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node)) && !allInternal(keyOfLiteral(node))) keep(node.name.text);
      if (ts.isStringLiteralLike(node)) keep(node.text);
      if (ts.isEnumMember(node) && node.name && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name))) keep(node.name.text);
      if (ts.isBindingElement(node)) {
        const name = node.propertyName ?? node.name;
        if (ts.isIdentifier(name)) keep(name.text);
      }
      if ((ts.isPropertyAccessExpression(node) || ts.isPropertyAccessChain?.(node)) && !allInternal(checker.getSymbolAtLocation(node.name))) keep(node.name.text);
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
  const safe = [...internal].filter((name) => !kept.has(name)).sort();
  return { pattern: new RegExp(`^(${safe.join('|') || '(?!)'})$`), names: safe };
}

function javascriptFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : javascriptFiles(file);
    return /\.(c|m)?js$/.test(entry.name) ? [file] : [];
  });
}
