// An HTTP trigger function: receives an API Gateway HTTP API v2.0 event, returns a v2 response.
export const handler = async (event) => {
  const name = event.queryStringParameters?.name ?? 'world';
  if (event.requestContext.http.method === 'POST') {
    const body = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString() : event.body ?? '';
    return { statusCode: 201, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ received: JSON.parse(body || 'null') }) };
  }
  return {
    statusCode: 200,
    headers: { 'content-type': 'text/html; charset=utf-8' },
    cookies: ['visited=1; Path=/'],
    body: `<h1>Hello, ${name.replace(/[<>&"]/g, '')}!</h1><p>path ${event.rawPath}</p>`,
  };
};
