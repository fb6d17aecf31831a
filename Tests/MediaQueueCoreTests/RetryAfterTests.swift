import MediaQueueCore
import Testing

@Suite struct RetryAfterTests {
    @Test func retryAfterReadsSecondsAndHTTPDates() {
        let now = Timestamp(seconds: 784_111_777 - 10)  // 10 s before Sun, 06 Nov 1994 08:49:37 GMT
        #expect(RetryAfter.delay("120", now: now) == .seconds(120))
        #expect(RetryAfter.delay(" 0 ", now: now) == .zero)
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == .seconds(10))
        #expect(RetryAfter.delay("Sunday, 06-Nov-94 08:49:37 GMT", now: now) == .seconds(10))
        #expect(RetryAfter.delay("Sun Nov  6 08:49:37 1994", now: now) == .seconds(10))
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:27 GMT", now: now + .seconds(60)) == .zero)
        #expect(RetryAfter.delay("soon", now: now) == nil)
        #expect(RetryAfter.delay("-5", now: now) == nil)
        // Found by fuzzing: a year too long for the date arithmetic crashed the relay.
        #expect(RetryAfter.delay("Sun, 06-Nov-921032104 08:49:37 GMT", now: now) == nil)
    }
}
