CREATE TRIGGER orders_debit AFTER INSERT ON orders BEGIN
            UPDATE users SET balance = balance - 1 WHERE id = new.user_id; END