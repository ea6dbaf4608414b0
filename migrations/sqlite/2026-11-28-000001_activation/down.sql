DROP TABLE activation_tokens;
