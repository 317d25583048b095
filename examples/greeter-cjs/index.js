// A CommonJS function with init work done once per instance, and an environment variable.
const greetings = { en: 'Hello', fr: 'Bonjour', de: 'Hallo', es: 'Hola' };
let invocations = 0;

exports.handler = async (event) => {
  invocations += 1;
  const lang = event.lang in greetings ? event.lang : 'en';
  return { greeting: `${greetings[lang]}, ${event.name ?? process.env.DEFAULT_NAME ?? 'friend'}`, invocations };
};
