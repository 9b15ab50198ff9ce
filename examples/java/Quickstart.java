// userops from Java with the jar (scripts/build-java writes target/java/userops.jar; it carries
// the native library and names Debian's JNA on its class path):
//   java -cp target/java/userops.jar examples/java/Quickstart.java
import io.userops.Cart;
import io.userops.Engine;
import io.userops.Identifier;
import io.userops.InsufficientPointsException;
import io.userops.Posting;
import io.userops.Quote;
import io.userops.User;
import io.userops.UserOpsException;
import java.math.BigDecimal;
import java.time.Instant;

public class Quickstart {
    public static void main(String[] args) {
        // Engine.open(Paths.get("crm.db")) keeps it in a SQLite file instead.
        try (Engine engine = Engine.inMemory()) {
            Instant now = Instant.parse("2026-03-08T04:00:00Z");
            engine.link("app-1", now, "app", "brand-a",
                Identifier.of("member_no", "M7"), Identifier.of("phone", "13900139000"));
            System.out.println("phone resolves to OneID " + engine.resolve("phone", "+86 139 0013 9000").getAsLong());

            engine.call("create_program", "{\"program\": {\"id\": \"brand-a\"}}");
            User member = User.id("member_no", "M7");
            engine.earn(member, "brand-a", 199, "order-1");
            Posting spent = engine.spend(member, "brand-a", 99, "redeem-1");
            System.out.println("balance " + spent.balance());
            try {
                engine.spend(member, "brand-a", 1000, "redeem-2");
            } catch (InsufficientPointsException e) { // a LedgerException, a UserOpsException
                System.out.println("refused (" + e.code() + "): " + e.getMessage());
            }

            engine.call("add_promotion", "{\"promotion\": {\"id\": \"p10\", \"action\":"
                + " {\"type\": \"percent_off\", \"percent\": \"10\"}}}");
            Cart cart = new Cart(now).line("s1", "beauty", new BigDecimal("199.00"), 1);
            try (Quote quote = engine.quote(cart, member)) {
                BigDecimal total = quote.total();
                System.out.println("quote: discount " + quote.discount() + ", total " + total);
                System.out.println("commit: " + engine.commit(quote, "order-2"));
            }

            try {
                engine.ingest("{\"kind\": \"identify\", \"key\": \"bad\", \"time\": \"2026-03-08T12:00:00+08:00\","
                    + " \"source\": {\"platform\": \"app\", \"program\": \"brand-a\"},"
                    + " \"ids\": [{\"kind\": \"email\", \"value\": \"not-an-email\"}]}");
            } catch (UserOpsException e) {
                System.out.println(e.code() + " at " + e.field() + ": nothing changed");
            }
        }
    }
}
