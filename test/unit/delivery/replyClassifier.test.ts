import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyReplyCode, classifySendError, describeSendError } from '../../../src/delivery/replyClassifier.js';

describe('classifying SMTP replies', () => {
  test('2xx is delivered, 4xx deferred, 5xx failed', () => {
    assert.equal(classifyReplyCode(250), 'delivered');
    assert.equal(classifyReplyCode(251), 'delivered');
    assert.equal(classifyReplyCode(421), 'deferred');
    assert.equal(classifyReplyCode(451), 'deferred');
    assert.equal(classifyReplyCode(550), 'failed');
    assert.equal(classifyReplyCode(554), 'failed');
  });

  test('5xx replies about this gateway session (bad sequence, authentication, encryption) are deferred', () => {
    for (const code of [503, 530, 534, 535, 538]) assert.equal(classifyReplyCode(code), 'deferred', String(code));
  });

  test('a reply that is not a final verdict is deferred', () => {
    assert.equal(classifyReplyCode(354), 'deferred');
    assert.equal(classifyReplyCode(0), 'deferred');
  });

  test('a refusal of MAIL FROM, RCPT TO or DATA takes the outcome of its code', () => {
    assert.equal(classifySendError({ code: 'EENVELOPE', command: 'MAIL FROM', responseCode: 553, response: '553 5.7.1 Sender rejected' }), 'failed');
    assert.equal(classifySendError({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 450 }), 'deferred');
    assert.equal(classifySendError({ code: 'EMESSAGE', command: 'DATA', responseCode: 554 }), 'failed');
    assert.equal(classifySendError({ code: 'EMESSAGE', command: 'DATA', responseCode: 421 }), 'deferred');
  });

  test('failures while setting up the session are deferred, whatever their code', () => {
    assert.equal(classifySendError({ code: 'EAUTH', command: 'AUTH PLAIN', responseCode: 535 }), 'deferred');
    assert.equal(classifySendError({ code: 'ETLS', command: 'STARTTLS', responseCode: 502 }), 'deferred');
    assert.equal(classifySendError({ code: 'EPROTOCOL', command: 'CONN', responseCode: 554 }), 'deferred');
    assert.equal(classifySendError({ code: 'ECONNECTION', command: 'CONN' }), 'deferred');
    assert.equal(classifySendError({ code: 'ESOCKET', message: 'connect ECONNREFUSED 127.0.0.1:25' }), 'deferred');
    assert.equal(classifySendError({ code: 'ETIMEDOUT' }), 'deferred');
  });

  test('an envelope nodemailer itself refuses will never go through: failed', () => {
    assert.equal(classifySendError({ code: 'EENVELOPE', command: 'API', message: 'Invalid recipient' }), 'failed');
    assert.equal(classifySendError({ code: 'EMESSAGE', command: 'MAIL FROM', message: 'Message size larger than allowed 100' }), 'failed');
  });

  test('describes an error by the server reply when there is one', () => {
    assert.equal(describeSendError({ code: 'EMESSAGE', response: '554 5.7.1 Spam', message: 'Message failed: 554 5.7.1 Spam' }), '554 5.7.1 Spam');
    assert.equal(describeSendError({ code: 'ESOCKET', message: 'connect ECONNREFUSED 127.0.0.1:25' }), 'ESOCKET: connect ECONNREFUSED 127.0.0.1:25');
  });
});
