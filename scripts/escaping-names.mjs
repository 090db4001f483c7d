// Which property names of our own types meet the world outside the program by name: the names a
// value carries when it leaves (JSON, CBOR, a log line, Node's options) or arrives (a decoded or
// parsed value given one of our types). A name found here stays whole in the bundle (see
// internal-names.mjs); every other member name of our types can shrink.
//
// It follows types where TypeScript's checker knows them: wherever a value of type T goes to a
// place of type C (an argument, an initializer, a return, a property of a literal, `as`):
// - C is loose (any, unknown, object, {}, a record of unknown, a type parameter of ours): T's own
//   properties leave by name, and so do those of every type inside T. (A type parameter of Node's
//   or a library's hands back what it was given, typed as the caller's own type, and a library's
//   callback that returns unknown is only tested for truth: neither is a place.)
// - T is any or unknown: the value came from outside, so C's properties arrive by name;
// - C is a type from outside src/ (Node's, a library's): T's members that C names are read by name;
// - C or T is a dictionary (an index signature): the names that go in or come out are its keys;
// - both are ours: the walk goes on inside, property by property, and through functions' parameters
//   and results. T may have more properties than C (a class that implements C): if C leaves,
//   so does T.
// A type parameter of ours that leaves or is filled from outside makes every type it stands for
// at a call, or in a generic type of ours, leave. And: a type whose keys are taken with keyof or
// for-in, and a type predicate's type, leave.

/** Names of properties that reach the outside by name, found in `files`. */
export function escapingNames(ts, checker, files, isOurs) {
  const F = ts.TypeFlags;
  const names = new Set();
  const ours = (node) => isOurs(node.getSourceFile());
  const foreignSymbol = (symbol) => symbol?.declarations?.length > 0 && symbol.declarations.every((declaration) => !ours(declaration));
  const foreign = (type) => foreignSymbol(type.aliasSymbol ?? type.symbol);
  // A class's methods and accessors live on its prototype: JSON, spread, Object.keys and for-in
  // never see them. An interface's methods may be an object literal's own properties, so they count.
  const onPrototype = (symbol) =>
    symbol.declarations?.every((d) => (ts.isMethodDeclaration(d) || ts.isGetAccessorDeclaration(d) || ts.isSetAccessorDeclaration(d)) && ts.isClassLike(d.parent));
  const ownProperties = (type) => checker.getPropertiesOfType(type).filter((symbol) => !onPrototype(symbol));
  const objectLike = (type) => (type.flags & (F.Object | F.Intersection)) !== 0;
  const isReference = (type) => (type.objectFlags & ts.ObjectFlags.Reference) !== 0;
  const fromOutside = (type) => (type.flags & (F.Any | F.Unknown)) !== 0;
  const stringIndexes = (type) => checker.getIndexInfosOfType(type).filter((index) => index.keyType.flags & F.String);
  const ourTypeParameter = (type) => (type.flags & F.TypeParameter) !== 0 && type.symbol?.declarations?.some(ours);

  const looseness = new Map();
  const loose = (type) => {
    if (!looseness.has(type)) {
      looseness.set(type, false); // a type that holds itself is judged by its other parts
      looseness.set(type, isLoose(type));
    }
    return looseness.get(type);
  };
  const isLoose = (type) => {
    // A type parameter of Node's or a library's generic hands back what it was given, typed as
    // the caller's own type (Promise.resolve, Object.freeze, Array.from): no place of its own.
    if (type.flags & F.TypeParameter) return !foreign(type);
    if (type.flags & (F.Any | F.Unknown | F.NonPrimitive | F.IndexedAccess)) return true;
    if (type.isUnion()) return type.types.some(loose);
    if (!(type.flags & F.Object)) return false;
    const indexes = checker.getIndexInfosOfType(type);
    if (stringIndexes(type).some((index) => index.type.flags & (F.Any | F.Unknown))) return true;
    const empty = checker.getPropertiesOfType(type).length === 0 && indexes.length === 0;
    return empty && type.getCallSignatures().length === 0 && type.getConstructSignatures().length === 0;
  };

  // Type parameters of ours whose values leave or came from outside: what they stand for leaves.
  const escapingParameters = new Set();
  // T's own properties, and those of every type inside it, leave by name.
  const leaving = new Set();
  const leaves = (type) => {
    if (leaving.has(type)) return;
    leaving.add(type);
    if (ourTypeParameter(type)) escapingParameters.add(type.symbol);
    if (type.isUnionOrIntersection()) return type.types.forEach(leaves);
    if (!(type.flags & F.Object) || (foreign(type) && !isReference(type))) return;
    for (const property of ownProperties(type)) {
      if (!foreignSymbol(property)) names.add(property.name);
      leaves(checker.getTypeOfSymbol(property));
    }
    for (const index of checker.getIndexInfosOfType(type)) leaves(index.type);
    if (isReference(type)) checker.getTypeArguments(type).forEach(leaves);
  };

  const followed = new Set();
  // Our object types a value went into, by the types it came from: if the place leaves, the value does.
  const narrowed = [];
  const flows = (from, to) => {
    if (from === to) return;
    const pair = `${from.id} ${to.id}`;
    if (followed.has(pair)) return;
    followed.add(pair);
    if (ourTypeParameter(to) && loose(from) && !mentionsTypeParameter(from)) escapingParameters.add(to.symbol);
    if (fromOutside(from)) return (to.isUnion() ? to.types.filter((member) => !loose(member)) : [to]).forEach(leaves);
    if (to.isUnion() && !(to.flags & F.EnumLiteral)) {
      // A value goes into the members of a union that can hold it (T into T | PromiseLike<T>: T).
      const holding = to.types.filter((member) => checker.isTypeAssignableTo(from, member));
      return (holding.length > 0 ? holding : to.types).forEach((member) => flows(from, member));
    }
    if (from.isUnion()) return from.types.forEach((member) => flows(member, to));
    if (loose(to)) return leaves(from);
    if (!objectLike(from) || !objectLike(to)) return;
    // A dictionary's keys are data: names that go into one, or come out of one, are keys.
    for (const index of stringIndexes(to)) {
      for (const property of ownProperties(from)) {
        names.add(property.name);
        flows(checker.getTypeOfSymbol(property), index.type);
      }
    }
    for (const index of stringIndexes(from)) {
      for (const property of ownProperties(to)) {
        names.add(property.name);
        flows(index.type, checker.getTypeOfSymbol(property));
      }
    }
    if (foreign(to)) {
      // Node's or a library's type reads by name the members of ours it names; beyond those
      // names, its insides are its own business.
      if (foreign(from) && !isReference(from)) return;
      for (const property of checker.getPropertiesOfType(from)) {
        const target = checker.getPropertyOfType(to, property.name);
        if (!target || foreignSymbol(property)) continue;
        names.add(property.name);
        if (!onPrototype(property)) flows(checker.getTypeOfSymbol(property), checker.getTypeOfSymbol(target));
      }
      return flowsArguments(from, to);
    }
    narrowed.push([from, to]);
    flowsArguments(from, to);
    for (const property of checker.getPropertiesOfType(from)) {
      const target = checker.getPropertyOfType(to, property.name);
      if (!target) continue;
      if (foreignSymbol(target) && !foreignSymbol(property)) names.add(property.name);
      if (!onPrototype(property)) flows(checker.getTypeOfSymbol(property), checker.getTypeOfSymbol(target));
    }
    // A function put where another is expected: it is called with the place's arguments, and
    // what it returns goes where the place's result goes.
    const [fromCall] = from.getCallSignatures();
    const [toCall] = to.getCallSignatures();
    if (fromCall && toCall && !foreign(from) && !foreign(to)) {
      fromCall.parameters.forEach((parameter, i) => {
        const given = toCall.parameters[i];
        if (given) flows(checker.getTypeOfSymbol(given), checker.getTypeOfSymbol(parameter));
      });
      flows(fromCall.getReturnType(), toCall.getReturnType());
    }
  };
  // Array<A> into Array<B>, Map<K, A> into Map<K, B>: A into B.
  const flowsArguments = (from, to) => {
    if (!isReference(from) || !isReference(to)) return;
    const fromArguments = checker.getTypeArguments(from);
    const toArguments = checker.getTypeArguments(to);
    // `new Map()` is a Map<any, any> until it is used: that any is no value from outside.
    const emptyCollection = ['Map', 'Set', 'WeakMap', 'WeakSet'].includes(from.symbol?.name);
    if (fromArguments.length === toArguments.length)
      fromArguments.forEach((argument, i) => !(emptyCollection && fromOutside(argument)) && flows(argument, toArguments[i]));
  };
  const mentionsTypeParameter = (type) => type.flags & F.TypeParameter || (type.isUnion() && type.types.some(mentionsTypeParameter));

  // Places whose contextual type is no place the value goes to.
  const notAPlace = (node) => {
    let outer = node;
    while (ts.isAwaitExpression(outer.parent) || ts.isParenthesizedExpression(outer.parent)) outer = outer.parent;
    const parent = outer.parent;
    // const { a, b } = value: the pattern's type is made of the names it takes.
    if ((ts.isVariableDeclaration(parent) || ts.isParameter(parent) || ts.isBindingElement(parent)) && parent.initializer === outer && !ts.isIdentifier(parent.name)) return true;
    if (ts.isBinaryExpression(parent) && parent.right === outer && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
      if (ts.isObjectLiteralExpression(parent.left) || ts.isArrayLiteralExpression(parent.left)) return true;
      // let x; x = value: the declared type is the evolving any.
      const declaration = ts.isIdentifier(parent.left) && checker.getSymbolAtLocation(parent.left)?.valueDeclaration;
      if (declaration && ts.isVariableDeclaration(declaration) && !declaration.type && !declaration.initializer) return true;
    }
    // f.bind(x), f.call(x), f.apply(x): the thisArg is not read by name.
    if (ts.isCallExpression(parent) && parent.arguments[0] === outer && ts.isPropertyAccessExpression(parent.expression) && ['bind', 'call', 'apply'].includes(parent.expression.name.text)) return true;
    // What a callback of Node's or a library's returns as unknown is only tested for truth
    // (some, filter, find, every).
    if (returnedBy(outer) && foreignCallback(returnedBy(outer)) && checker.getContextualType(outer)?.flags & F.Unknown) return true;
    // The operand of `as` is judged with the assertion below.
    return ts.isAsExpression(parent) || ts.isTypeAssertionExpression(parent);
  };
  const returnedBy = (expression) => {
    const parent = expression.parent;
    if (ts.isArrowFunction(parent) && parent.body === expression) return parent;
    if (ts.isReturnStatement(parent)) return ts.findAncestor(parent, ts.isFunctionLike);
    return undefined;
  };
  const foreignCallback = (fn) => {
    const place = (ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) && checker.getContextualType(fn);
    return place && foreign(place);
  };
  // `undefined as unknown as T` holds a place; it is no value from outside.
  const placeholder = (node) =>
    node.kind === ts.SyntaxKind.NullKeyword || (ts.isIdentifier(node) && node.text === 'undefined') || ((ts.isAsExpression(node) || ts.isParenthesizedExpression(node)) && placeholder(node.expression));

  const typeOf = (node) => checker.getTypeAtLocation(node);
  const each = (visit) => {
    for (const file of files) {
      const walk = (node) => {
        visit(node);
        ts.forEachChild(node, walk);
      };
      walk(file);
    }
  };
  each((node) => {
    if (ts.isExpression(node) && (!ts.isPropertyAccessExpression(node.parent) || node.parent.expression === node) && !notAPlace(node)) {
      const place = checker.getContextualType(node);
      if (place) flows(typeOf(node), place);
    }
    if ((ts.isAsExpression(node) || ts.isTypeAssertionExpression(node) || ts.isSatisfiesExpression?.(node)) && !placeholder(node.expression)) {
      flows(typeOf(node.expression), typeOf(node));
      flows(typeOf(node), typeOf(node.expression));
    }
    if (ts.isForInStatement(node)) leaves(typeOf(node.expression));
    if (ts.isTypeOperatorNode(node) && node.operator === ts.SyntaxKind.KeyOfKeyword) leaves(checker.getTypeFromTypeNode(node.type));
    if (ts.isTypePredicateNode(node) && node.type) leaves(checker.getTypeFromTypeNode(node.type));
  });

  // What an escaping type parameter stands for: at each call of a generic function of ours, the
  // arguments, explicit type arguments and result that it types; in each generic type of ours,
  // its argument. Leaving can mark more type parameters, and a place that leaves takes wider
  // values with it, so this runs until nothing new leaves (a few rounds).
  const mentionsEscaping = (typeNode) => {
    let found = false;
    const look = (node) => {
      if (ts.isTypeReferenceNode(node) && escapingParameters.has(checker.getSymbolAtLocation(node.typeName))) found = true;
      else ts.forEachChild(node, look);
    };
    if (typeNode) look(typeNode);
    return found;
  };
  const standIns = (node) => {
    if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
      const declaration = checker.getResolvedSignature(node)?.declaration;
      if (declaration && !ts.isJSDocSignature?.(declaration) && ours(declaration)) {
        if (mentionsEscaping(declaration.type)) leaves(typeOf(node));
        declaration.parameters?.forEach((parameter, i) => {
          if (!mentionsEscaping(parameter.type)) return;
          const given = parameter.dotDotDotToken ? node.arguments?.slice(i) : [node.arguments?.[i]];
          for (const argument of given ?? []) if (argument) leaves(typeOf(argument));
        });
        node.typeArguments?.forEach((argument, i) => escapingParameters.has(declaration.typeParameters?.[i]?.symbol) && leaves(checker.getTypeFromTypeNode(argument)));
      }
    }
    if (ts.isExpression(node) || ts.isTypeReferenceNode(node)) {
      const type = ts.isTypeReferenceNode(node) ? checker.getTypeFromTypeNode(node) : typeOf(node);
      const parameters = isReference(type) ? type.target?.typeParameters : undefined;
      if (parameters?.some((parameter) => escapingParameters.has(parameter.symbol))) {
        checker.getTypeArguments(type).forEach((argument, i) => parameters[i] && escapingParameters.has(parameters[i].symbol) && leaves(argument));
      }
    }
  };
  for (let round = 0; round < 20; round++) {
    const before = leaving.size + escapingParameters.size;
    if (escapingParameters.size > 0) each(standIns);
    for (const [from, to] of narrowed) if (leaving.has(to)) leaves(from);
    if (leaving.size + escapingParameters.size === before) break;
  }
  return names;
}
